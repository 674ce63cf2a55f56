/**
 * Keyboard, mouse, wheel, pointer lock and gamepads → RIFT InputMessages (RIFT.md §9).
 * Everything held is released when the page loses focus or is hidden.
 */

import type { Pb } from "../rift/messages.js";
import { evdevFor } from "./keymap.js";

type Send = (input: Pb) => void;

/** MouseEvent.button → RIFT button (1 left, 2 middle, 3 right, 4 back, 5 forward). */
const BUTTONS: Record<number, number> = { 0: 1, 1: 2, 2: 3, 3: 4, 4: 5 };
/** Standard Gamepad button index → RIFT button (triggers 6/7 are axes 4/5 instead). */
const PAD_BUTTONS: Record<number, number> = {
  0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 8: 6, 9: 7, 16: 8, 10: 9, 11: 10, 12: 11, 13: 12, 14: 13, 15: 14,
};
const LINE_PX = 40; // a "line" of DOM_DELTA_LINE wheel events, in pixels
const NOTCH_PX = 100; // Chromium's pixel delta per wheel detent
const PAGE_NOTCHES = 3; // a DOM_DELTA_PAGE wheel event

export function wallUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** Where the picture is inside the canvas element (object-fit: contain letterboxing). */
function pictureRect(canvas: HTMLCanvasElement): { x: number; y: number; w: number; h: number } {
  const r = canvas.getBoundingClientRect();
  const cw = canvas.width || 1;
  const ch = canvas.height || 1;
  const scale = Math.min(r.width / cw, r.height / ch);
  const w = cw * scale;
  const h = ch * scale;
  return { x: r.left + (r.width - w) / 2, y: r.top + (r.height - h) / 2, w, h };
}

export class InputCapture {
  private keys = new Set<number>();
  private buttons = new Set<number>();
  private pads = new Map<number, { axes: number[]; buttons: boolean[] }>();
  private padTimer: ReturnType<typeof setInterval> | null = null;
  private motion = { dx: 0, dy: 0 };
  enabled = false;
  events = 0;
  private readonly detach: Array<() => void> = [];

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly send: Send,
    /** Ctrl+Alt+Shift+<key> shortcuts of the page (not sent to the host) */
    private readonly onHotkey: (code: string) => boolean,
  ) {}

  private on<K extends keyof WindowEventMap>(target: Window, type: K, fn: (e: WindowEventMap[K]) => void, opts?: AddEventListenerOptions): void;
  private on<K extends keyof HTMLElementEventMap>(target: HTMLElement, type: K, fn: (e: HTMLElementEventMap[K]) => void, opts?: AddEventListenerOptions): void;
  private on(target: EventTarget, type: string, fn: (e: never) => void, opts?: AddEventListenerOptions): void {
    target.addEventListener(type, fn as EventListener, opts);
    this.detach.push(() => target.removeEventListener(type, fn as EventListener, opts));
  }

  attach(): void {
    const c = this.canvas;
    this.on(window, "keydown", (e) => this.key(e, true));
    this.on(window, "keyup", (e) => this.key(e, false));
    // pointer events: mouse, pen and touch alike (a tap is a left click)
    this.on(c, "pointermove", (e) => this.move(e));
    this.on(c, "pointerdown", (e) => this.button(e, true));
    this.on(window, "pointerup", (e) => this.button(e, false));
    this.on(window, "pointercancel", (e) => this.button(e, false));
    this.on(c, "wheel", (e) => this.wheel(e), { passive: false });
    this.on(c, "contextmenu", (e) => e.preventDefault());
    this.on(window, "blur", () => this.releaseAll());
    this.on(window, "pagehide", () => this.releaseAll());
    const vis = () => {
      if (document.visibilityState === "hidden") this.releaseAll();
    };
    document.addEventListener("visibilitychange", vis);
    this.detach.push(() => document.removeEventListener("visibilitychange", vis));
    this.on(window, "gamepadconnected", () => this.startPads());
    if (navigator.getGamepads?.().some((p) => p !== null)) this.startPads();
  }

  dispose(): void {
    this.releaseAll();
    for (const d of this.detach.splice(0)) d();
    if (this.padTimer !== null) clearInterval(this.padTimer);
  }

  private emit(event: Pb): void {
    if (!this.enabled) return;
    this.events++;
    this.send({ timestamp_us: wallUs(), ...event });
  }

  private key(e: KeyboardEvent, pressed: boolean): void {
    if (!this.enabled) return;
    const t = e.target as HTMLElement | null;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return; // typing in the page
    if (pressed && e.ctrlKey && e.altKey && e.shiftKey && this.onHotkey(e.code)) {
      e.preventDefault();
      return;
    }
    const code = evdevFor(e.code);
    if (code === undefined) return;
    e.preventDefault();
    if (pressed) {
      if (e.repeat && this.keys.has(code)) return; // the host repeats by itself
      this.keys.add(code);
    } else if (!this.keys.delete(code)) {
      return;
    }
    this.emit({ key: { keycode: code, pressed } });
  }

  private move(e: MouseEvent): void {
    if (document.pointerLockElement === this.canvas) {
      // relative motion in stream pixels (RIFT.md §9 MouseMotion)
      const r = pictureRect(this.canvas);
      const scale = this.canvas.width / (r.w || 1);
      this.motion.dx += e.movementX * scale;
      this.motion.dy += e.movementY * scale;
      const dx = Math.trunc(this.motion.dx);
      const dy = Math.trunc(this.motion.dy);
      if (dx === 0 && dy === 0) return;
      this.motion.dx -= dx;
      this.motion.dy -= dy;
      this.emit({ mouse_motion: { dx, dy } });
      return;
    }
    const p = this.position(e);
    if (p !== null) this.emit({ mouse_move: p });
  }

  /** Absolute position in [0, 1] over the picture, or null outside it. */
  position(e: { clientX: number; clientY: number }): { x: number; y: number } | null {
    const r = pictureRect(this.canvas);
    const x = (e.clientX - r.x) / r.w;
    const y = (e.clientY - r.y) / r.h;
    if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) return null;
    return { x, y };
  }

  private button(e: MouseEvent, pressed: boolean): void {
    const b = BUTTONS[e.button];
    if (b === undefined || !this.enabled) return;
    if (pressed) {
      const p = this.position(e);
      if (p === null && document.pointerLockElement !== this.canvas) return;
      e.preventDefault();
      this.canvas.focus();
      if (e instanceof PointerEvent && e.pointerType !== "mouse") this.canvas.setPointerCapture?.(e.pointerId);
      if (p !== null && document.pointerLockElement !== this.canvas) this.emit({ mouse_move: p });
      this.buttons.add(b);
    } else if (!this.buttons.delete(b)) {
      return;
    }
    this.emit({ mouse_button: { button: b, pressed } });
  }

  private wheel(e: WheelEvent): void {
    if (!this.enabled) return;
    e.preventDefault();
    const unit = e.deltaMode === 1 ? LINE_PX / NOTCH_PX : e.deltaMode === 2 ? PAGE_NOTCHES : 1 / NOTCH_PX;
    // DOM: positive deltaY scrolls down (toward the user); RIFT: positive dy scrolls up
    this.emit({ scroll: { dx: e.deltaX * unit, dy: -e.deltaY * unit } });
  }

  togglePointerLock(): void {
    if (document.pointerLockElement === this.canvas) document.exitPointerLock();
    else void this.canvas.requestPointerLock();
  }

  // ---- gamepads ----------------------------------------------------------------------------

  private startPads(): void {
    if (this.padTimer === null) this.padTimer = setInterval(() => this.pollPads(), 4);
  }

  private pollPads(): void {
    const pads = navigator.getGamepads?.() ?? [];
    for (const pad of pads) {
      if (pad === null || pad.mapping !== "standard" || pad.index > 15) continue;
      const prev = this.pads.get(pad.index) ?? { axes: [0, 0, 0, 0, 0, 0], buttons: [] };
      const axes = [...pad.axes.slice(0, 4).map((a) => (Math.abs(a) < 0.02 ? 0 : a)), pad.buttons[6]?.value ?? 0, pad.buttons[7]?.value ?? 0];
      const changedAxes: Pb[] = [];
      axes.forEach((v, i) => {
        if (Math.abs(v - (prev.axes[i] ?? 0)) > 0.004) changedAxes.push({ axis: i, value: v });
      });
      const buttons = pad.buttons.map((b) => b.pressed);
      const changedButtons: Pb[] = [];
      for (const [idx, rift] of Object.entries(PAD_BUTTONS)) {
        const i = Number(idx);
        if ((buttons[i] ?? false) !== (prev.buttons[i] ?? false)) changedButtons.push({ button: rift, pressed: buttons[i] ?? false });
      }
      this.pads.set(pad.index, { axes, buttons });
      if (changedAxes.length || changedButtons.length) {
        this.emit({ gamepad: { gamepad_id: pad.index, axes: changedAxes, buttons: changedButtons } });
      }
    }
  }

  /** Release every key, button and pad control the host holds for us. */
  releaseAll(): void {
    for (const k of this.keys) this.emit({ key: { keycode: k, pressed: false } });
    this.keys.clear();
    for (const b of this.buttons) this.emit({ mouse_button: { button: b, pressed: false } });
    this.buttons.clear();
    for (const [id, p] of this.pads) {
      const axes = p.axes.map((v, i) => ({ axis: i, value: 0, was: v })).filter((a) => a.was !== 0);
      const buttons = Object.entries(PAD_BUTTONS)
        .filter(([i]) => p.buttons[Number(i)])
        .map(([, rift]) => ({ button: rift, pressed: false }));
      if (axes.length || buttons.length) {
        this.emit({ gamepad: { gamepad_id: id, axes: axes.map(({ axis, value }) => ({ axis, value })), buttons } });
      }
      this.pads.set(id, { axes: [0, 0, 0, 0, 0, 0], buttons: [] });
    }
  }
}
