/**
 * The error tree every component shares. Callers branch on the class, never on message text:
 * - ConfigError: wrong settings or credentials; fatal at start, retrying will not help.
 * - RetryableError: the other side is down or overloaded; try again later (optionally after retryAfterMs).
 * - PermanentError: this one record or request is bad; dead-letter it and go on.
 */
export class LifelineError extends Error {
  /** Stable machine-readable code, e.g. `config.unknown_key`, `elasticsearch.unreachable`. */
  readonly code: string;
  /** What the operator can do about it, printed under the message by the CLI. */
  readonly hint: string | undefined;

  constructor(code: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options?.hint;
  }
}

export class ConfigError extends LifelineError {}

/** A command line that cannot be run as given (a missing argument, two that exclude each other): exit 2. */
export class UsageError extends ConfigError {
  constructor(message: string, options?: { hint?: string }) {
    super("usage", message, options);
  }
}

export class RetryableError extends LifelineError {
  readonly retryAfterMs: number | undefined;

  constructor(
    code: string,
    message: string,
    options?: { cause?: unknown; hint?: string; retryAfterMs?: number },
  ) {
    super(code, message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

export class PermanentError extends LifelineError {}

export function isRetryable(error: unknown): boolean {
  return error instanceof RetryableError;
}

/** One line for humans: message, then the hint if there is one. */
export function describeError(error: unknown): string {
  if (error instanceof LifelineError) {
    return error.hint ? `${error.message}\n  hint: ${error.hint}` : error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
