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
 * Bad input: `failures` lists the problems found — at most
 * MAX_REPORTED_FAILURES of them, then, when `omitted` more were counted, one
 * "… and N more failures" entry — and the message has one `path: rule` line
 * per entry.
 */
export class InputError extends Error {
  readonly failures: readonly Failure[];

  constructor(listed: readonly Failure[], readonly omitted = 0, omittedPath = "") {
    const failures = omitted > 0 ? [...listed, { path: omittedPath, rule: `… and ${omitted} more failures` }] : listed;
    super(messageOf(failures));
    this.name = "InputError";
    this.failures = failures;
  }

  /** The failures found, without the "… and N more" entry. */
  get listed(): readonly Failure[] {
    return this.omitted > 0 ? this.failures.slice(0, -1) : this.failures;
  }
}

/** Makes the InputError of a FailureList (SpecError, CodecError). */
export type InputErrorMaker = (listed: Failure[], omitted: number, omittedPath: string) => InputError;

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

  /** Adds every failure of an InputError or another list, their counted-only ones too. */
  addAll(source: InputError | FailureList): void {
    const [listed, omitted, omittedPath] = source instanceof FailureList
      ? [source.#kept, source.#omitted, source.#omittedRoot]
      : [source.listed, source.omitted, rootOf(source.failures[source.failures.length - 1]?.path ?? "")];
    for (const failure of listed) this.add(failure.path, failure.rule);
    if (omitted === 0) return;
    if (this.#omitted === 0) this.#omittedRoot = omittedPath;
    this.#omitted += omitted;
  }

  /** Throws `make(kept, omitted, path of the first omitted)` when any failure was added. */
  throwIfAny(make: InputErrorMaker): void {
    if (this.count > 0) throw make([...this.#kept], this.#omitted, this.#omittedRoot);
  }
}
