/**
 * One error type for everything the user can fix: bad files, bad flags, bad data.
 * The CLI prints `message` as one line and exits 1; anything else is a bug and shows a stack.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'UserError';
  }
}

export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

export function check(cond: unknown, message: string, file?: string): asserts cond {
  if (!cond) throw new UserError(message, file);
}

/** A setting out of its range or of the wrong kind: the CLI reports it as bad usage (exit 2), naming the flag. */
export class ConfigError extends UserError {
  constructor(
    message: string,
    readonly flag: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}
