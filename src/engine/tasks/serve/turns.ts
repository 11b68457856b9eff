/**
 * Turns at the model, first come first served: each generation takes one turn per model step (a chunk of prompt
 * or one new token), so concurrent requests interleave token by token and a long one never starves a short one.
 */
export class Turns {
  private busy = false;
  private waiting: (() => void)[] = [];

  /** Wait for a turn; call the returned function when the step is done. */
  async take(): Promise<() => void> {
    if (this.busy) await new Promise<void>((r) => this.waiting.push(r));
    this.busy = true;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.busy = false;
    };
  }

  /** requests waiting for a turn */
  get queued(): number {
    return this.waiting.length;
  }
}
