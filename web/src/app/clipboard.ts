/**
 * Clipboard text both ways through the async Clipboard API, where the browser permits it:
 * host → page is written when the page has focus (else on its next focus); page → host is read
 * when the page gains focus if the user granted "clipboard-read", or on the toolbar button.
 */

export class ClipboardSync {
  private last = "";
  private pendingWrite: string | null = null;
  note = "";

  constructor(private readonly sendText: (text: string) => void) {}

  attach(): void {
    window.addEventListener("focus", () => {
      void this.flushWrite();
      void this.readIfGranted();
    });
  }

  /** Text from the host. */
  async fromHost(text: string): Promise<void> {
    this.last = text; // do not send it straight back
    this.pendingWrite = text;
    await this.flushWrite();
  }

  private async flushWrite(): Promise<void> {
    const text = this.pendingWrite;
    if (text === null || !navigator.clipboard?.writeText || !document.hasFocus()) return;
    try {
      await navigator.clipboard.writeText(text);
      this.pendingWrite = null;
      this.note = "";
    } catch (e) {
      this.note = `clipboard from the host not written: ${String(e)}`;
    }
  }

  private async readIfGranted(): Promise<void> {
    try {
      const p = await navigator.permissions.query({ name: "clipboard-read" as PermissionName });
      if (p.state === "granted") await this.read();
    } catch {
      /* no permission API for it: the button still works */
    }
  }

  /** Read the local clipboard and send it if it changed (call from a user gesture). */
  async read(): Promise<boolean> {
    if (!navigator.clipboard?.readText) {
      this.note = "this browser does not let pages read the clipboard";
      return false;
    }
    try {
      const text = await navigator.clipboard.readText();
      if (text && text !== this.last) {
        this.last = text;
        this.sendText(text);
        return true;
      }
    } catch (e) {
      this.note = `clipboard not read: ${String(e)}`;
    }
    return false;
  }
}
