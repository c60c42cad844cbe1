// Failures of user input, collected rather than thrown one by one, and the
// error that reports them. Both SpecError (a spec) and CodecError (a codec
// declaration or value) are InputErrors, and both collect through a
// FailureList, which keeps what a message can usefully show: at most
// MAX_REPORTED_FAILURES failures, each with a bounded path and rule, plus a
// count of the rest.

/** One failure: where (a.b[3].c) and which rule. */
export interface Failure {
  path: string;
  rule: string;
}

/** How many failures an error lists; the rest are counted in one last line. */
export const MAX_REPORTED_FAILURES = 100;

// A path or rule longer than this is cut (a 200 MB property name or value
// must not become a 200 MB message).
const MAX_TEXT = 512;
// How much of a user's value a rule quotes.
const MAX_ECHO = 64;

/** Returns `text` cut to `max` characters, saying how long it was. */
export function clip(text: string, max = MAX_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * Quotes a user's value in a rule: strings as JSON, other values as JSON
 * where they have one. Long renderings keep their first 64 characters and say
 * how long the value was. Never throws (cycles, deep nesting, BigInt).
 */
export function echo(value: unknown): string {
  if (typeof value === "string") {
    if (value.length > MAX_ECHO) return `${JSON.stringify(value.slice(0, MAX_ECHO))}… (${Buffer.byteLength(value)} bytes)`;
    return JSON.stringify(value);
  }
  if (typeof value === "bigint") return `${value}`;
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}… (${text.length} characters)` : text;
}

/** The message of a list of failures: one `path: rule` line each. */
function messageOf(failures: readonly Failure[]): string {
  return failures.map((failure) => (failure.path ? `${failure.path}: ${failure.rule}` : failure.rule)).join("\n");
}

/**
 * Bad input: `failures` lists every problem found (the last entry counts
 * those beyond MAX_REPORTED_FAILURES), and the message has one `path: rule`
 * line per failure.
 */
export class InputError extends Error {
  constructor(readonly failures: readonly Failure[]) {
    super(messageOf(failures));
    this.name = "InputError";
  }
}

// The property a failure belongs to: its path up to the first . [ or space.
const rootOf = (path: string): string => /^[^.[ ]*/.exec(path)![0];

/**
 * Collects failures: keeps the first MAX_REPORTED_FAILURES (paths and rules
 * clipped) and counts the rest, so that a million bad entries cost a counter,
 * not a million messages.
 */
export class FailureList {
  readonly #kept: Failure[] = [];
  #omitted = 0;
  #omittedRoot = "";

  /** The number of failures added (kept or counted). */
  get count(): number {
    return this.#kept.length + this.#omitted;
  }

  /** Adds one failure. */
  add(path: string, rule: string): void {
    if (this.#kept.length < MAX_REPORTED_FAILURES) {
      this.#kept.push({ path: clip(path), rule: clip(rule) });
      return;
    }
    if (this.#omitted === 0) this.#omittedRoot = rootOf(path);
    this.#omitted++;
  }

  /** Adds every failure of an InputError or another list (whose own omitted ones are counted too). */
  addAll(source: InputError | FailureList): void {
    if (source instanceof FailureList) {
      for (const failure of source.#kept) this.add(failure.path, failure.rule);
      if (source.#omitted > 0) {
        if (this.#omitted === 0 && this.#kept.length >= MAX_REPORTED_FAILURES) this.#omittedRoot = source.#omittedRoot;
        this.#omitted += source.#omitted;
      }
      return;
    }
    for (const failure of source.failures) {
      const more = /^… and (\d+) more failures$/.exec(failure.rule);
      if (more) {
        if (this.#omitted === 0 && this.#kept.length >= MAX_REPORTED_FAILURES) this.#omittedRoot = failure.path;
        this.#omitted += Number(more[1]);
      } else this.add(failure.path, failure.rule);
    }
  }

  /** The failures to report: the kept ones, then one "… and N more failures" line if any were counted only. */
  list(): Failure[] {
    if (this.#omitted === 0) return [...this.#kept];
    return [...this.#kept, { path: this.#omittedRoot, rule: `… and ${this.#omitted} more failures` }];
  }

  /** Throws `make(list())` when any failure was added. */
  throwIfAny(make: (failures: Failure[]) => InputError): void {
    if (this.count > 0) throw make(this.list());
  }
}
