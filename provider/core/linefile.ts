// Contents files read as lines: bounded, regular files only, streamed in
// chunks (a line is handed over as a slice of the read buffer, never copied
// into a string unless the caller asks), hashed as they are read.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** The largest contents file read: 256 MiB (a 1,000,000-entry u32 → u64 table is about 30 MB). */
export const CONTENTS_FILE_MAX_BYTES = 256 * 1024 * 1024;

// Bytes read at a time; a longer line grows the buffer.
const READ_CHUNK = 4 << 20;

function fileKind(stat: fs.BigIntStats): string {
  if (stat.isFIFO()) return "a FIFO";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  if (stat.isDirectory()) return "a directory";
  if (stat.isSocket()) return "a socket";
  return "not a regular file";
}

/** What streamLines read: the file's identity (path, device, inode, size, times) and the sha256 of its bytes. */
export interface FileRead {
  identity: string;
  digest: string;
}

const cannotRead = (file: string, error: unknown) => `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;

/**
 * Streams a regular file of at most CONTENTS_FILE_MAX_BYTES line by line:
 * `onLine(bytes, start, end, lineNumber)` gets each line without its newline
 * as a range of a buffer that is reused after the call (no calls when
 * `onLine` is undefined: the file is only hashed). O_NONBLOCK keeps a FIFO
 * from blocking the open, fstat (of what was opened, not of the path) refuses
 * anything but a regular file, and reading stops past the bound, so a file
 * that grows while it is read cannot grow the process. Returns what was read,
 * or the rule the file broke (a string); an exception from `onLine` passes
 * through.
 */
export function streamLines(file: string, onLine?: (bytes: Buffer, start: number, end: number, line: number) => void): FileRead | string {
  let fd: number;
  let stat: fs.BigIntStats;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (error) {
    return cannotRead(file, error);
  }
  try {
    try {
      stat = fs.fstatSync(fd, { bigint: true });
    } catch (error) {
      return cannotRead(file, error);
    }
    if (!stat.isFile()) return `${file} is ${fileKind(stat)}; a contents file must be a regular file`;
    const tooBig = (bytes: number | string) => `${file} has ${bytes} bytes; a contents file may have at most ${CONTENTS_FILE_MAX_BYTES} (256 MiB)`;
    if (stat.size > BigInt(CONTENTS_FILE_MAX_BYTES)) return tooBig(String(stat.size));
    const identity = `${path.resolve(file)}\0${stat.dev}\0${stat.ino}\0${stat.size}\0${stat.mtimeNs}\0${stat.ctimeNs}`;
    const hash = createHash("sha256");
    // Sized by fstat, at least one byte: /proc files report 0 and still have lines.
    let buffer = Buffer.allocUnsafe(Math.max(1, Math.min(READ_CHUNK, Number(stat.size) + 1)));
    let filled = 0;
    let total = 0;
    let line = 1;
    for (;;) {
      if (filled === buffer.length) {
        // A line longer than the buffer (or a file that grew): grow it.
        const larger = Buffer.allocUnsafe(buffer.length * 2);
        buffer.copy(larger, 0, 0, filled);
        buffer = larger;
      }
      let read: number;
      try {
        read = fs.readSync(fd, buffer, filled, buffer.length - filled, null);
      } catch (error) {
        return cannotRead(file, error);
      }
      total += read;
      if (total > CONTENTS_FILE_MAX_BYTES) return tooBig(`more than ${CONTENTS_FILE_MAX_BYTES}`);
      hash.update(buffer.subarray(filled, filled + read));
      if (!onLine) {
        if (read === 0) return { identity, digest: hash.digest("hex") };
        continue;
      }
      const end = filled + read;
      let start = 0;
      // A loop over the bytes, not indexOf: a native call per line costs more than the scan.
      for (let at = filled; at < end; at++) {
        if (buffer[at] !== 0x0a) continue;
        onLine(buffer, start, at, line++);
        start = at + 1;
      }
      if (read === 0) {
        if (start < end) onLine(buffer, start, end, line);
        return { identity, digest: hash.digest("hex") };
      }
      // Keep the unfinished line at the front for the next read.
      buffer.copy(buffer, 0, start, end);
      filled = end - start;
    }
  } finally {
    fs.closeSync(fd);
  }
}

// ignoreBOM: a byte order mark is kept in the text (lineText decides).
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes a line as strict UTF-8; undefined when it is not valid UTF-8. A
 * byte order mark is dropped only at the very start of the file (line 1),
 * as decoding the whole file would; elsewhere it stays (and is not JSON).
 */
export function lineText(bytes: Buffer, start: number, end: number, line: number): string | undefined {
  try {
    const text = strict.decode(bytes.subarray(start, end));
    return line === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    return undefined;
  }
}
