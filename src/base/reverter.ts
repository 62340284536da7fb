/**
 * Undoes partial multi-step changes: register an undo after each step, call
 * `success()` at the end; `revert()` (in a finally) runs the undos in reverse
 * unless success was called.
 */
export class Reverter {
  private undos: (() => Promise<void> | void)[] = [];
  private done = false;

  add(undo: () => Promise<void> | void): void {
    this.undos.push(undo);
  }

  success(): void {
    this.done = true;
  }

  /** Runs every undo even if some throw; returns their errors. */
  async revert(): Promise<unknown[]> {
    if (this.done) return [];
    const errors: unknown[] = [];
    for (const undo of this.undos.reverse()) {
      try {
        await undo();
      } catch (e) {
        errors.push(e);
      }
    }
    this.undos = [];
    return errors;
  }
}
