/** The sign-in form and host list of the gateway-served page (/app). */

import type { Identity } from "../rift/identity.js";
import {
  GatewayError,
  type SignedIn,
  type WebRendezvous,
  listHosts,
  registerDevice,
  rendezvous,
  savedSignIn,
  signIn,
  signOut,
} from "./gateway.js";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

export class GatewayUi {
  private signedIn: SignedIn | null = savedSignIn();

  constructor(
    private readonly identity: Identity,
    private readonly onHost: (r: WebRendezvous) => void,
  ) {}

  show(): void {
    $("gateway").hidden = false;
    $<HTMLFormElement>("signin").onsubmit = (e) => {
      e.preventDefault();
      void this.submit();
    };
    $("signout").onclick = () => {
      if (this.signedIn) signOut(this.signedIn);
      this.signedIn = null;
      this.render();
    };
    this.render();
  }

  private say(text: string): void {
    $("gateway-message").textContent = text;
  }

  private async submit(): Promise<void> {
    this.say("signing in…");
    try {
      this.signedIn = await signIn(
        $<HTMLInputElement>("login").value,
        $<HTMLInputElement>("password").value,
        $<HTMLInputElement>("totp").value,
      );
      this.say("");
    } catch (e) {
      this.say(e instanceof GatewayError && e.code === "totp_required" ? "enter your 2FA code too" : String((e as Error).message));
      if (e instanceof GatewayError && e.code === "totp_required") $("totp-row").hidden = false;
      return;
    }
    this.render();
  }

  private render(): void {
    const s = this.signedIn;
    $<HTMLFormElement>("signin").hidden = s !== null;
    $("hosts-box").hidden = s === null;
    if (s !== null) void this.loadHosts(s);
  }

  private async loadHosts(s: SignedIn): Promise<void> {
    $("who").textContent = `signed in as ${s.user.username}`;
    try {
      await registerDevice(s, this.identity, `browser (${navigator.platform || "web"})`);
      const hosts = await listHosts(s);
      const list = $("hosts");
      list.replaceChildren(
        ...hosts.map((h) => {
          const li = document.createElement("li");
          const b = document.createElement("button");
          b.textContent = `${h.name || h.wavry_id}${h.shared ? " (shared)" : ""}`;
          b.disabled = !h.online;
          b.dataset.wavryId = h.wavry_id;
          b.title = h.online ? h.wavry_id : "offline";
          b.onclick = () => void this.pick(s, h.wavry_id);
          li.append(b, document.createTextNode(h.online ? " online" : " offline"));
          return li;
        }),
      );
      if (!hosts.length) this.say("no hosts on this account yet");
    } catch (e) {
      if (e instanceof GatewayError && (e.code === "unauthorized" || e.code === "invalid_token")) {
        this.signedIn = null;
        this.render();
      }
      this.say(String((e as Error).message));
    }
  }

  private async pick(s: SignedIn, hostId: string): Promise<void> {
    this.say("asking the host…");
    try {
      const r = await rendezvous(s, this.identity, hostId);
      $("gateway").hidden = true;
      this.onHost(r);
    } catch (e) {
      this.say(String((e as Error).message));
    }
  }
}
