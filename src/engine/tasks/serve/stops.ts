/**
 * Stop sequences over a stream of text: the text is released as it grows, except an end that could still be the
 * start of a stop sequence, and it ends before the first stop sequence that appears.
 */
export class StopScanner {
  private released = 0;
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = Math.max(0, ...stops.map((s) => s.length));
  }

  /**
   * Given the whole text so far, the part that can be shown now (after what was shown before), and whether a stop
   * sequence ended it. `final` releases everything left (the generation ended for another reason).
   */
  push(text: string, final = false): { delta: string; stopped: boolean; text: string } {
    const from = Math.max(0, this.released - this.longest);
    let cut = -1;
    for (const s of this.stops) {
      if (!s) continue;
      const i = text.indexOf(s, from);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) return this.release(text.slice(0, cut), true);
    if (final) return this.release(text, false);
    // hold back an end that is a proper prefix of a stop sequence, and a half-decoded character
    let keep = text.length;
    for (const s of this.stops)
      for (let n = Math.min(s.length - 1, text.length); n > 0; n--)
        if (text.endsWith(s.slice(0, n))) {
          keep = Math.min(keep, text.length - n);
          break;
        }
    while (keep > this.released && text.charCodeAt(keep - 1) === 0xfffd) keep--;
    return this.release(text.slice(0, Math.max(keep, this.released)), false);
  }

  private release(upTo: string, stopped: boolean): { delta: string; stopped: boolean; text: string } {
    const delta = upTo.length > this.released ? upTo.slice(this.released) : '';
    this.released = Math.max(this.released, upTo.length);
    return { delta, stopped, text: upTo };
  }
}
