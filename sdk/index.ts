// pulumi-ebpf: declarative, pinned eBPF maps for Pulumi.
import * as pulumi from "@pulumi/pulumi";
import type {
  CodecDecl, ContentEntry, ContentsDrift, InnerMapSpec, LiveAbi, MapFlagName, MapTypeName, PinnedMapSpecInput as CoreSpecInput,
} from "../provider/core";
import { stubProvider } from "./stub";

/**
 * The inputs a user declares: the core's spec input (its zod schema
 * PinnedMapSpecInputSchema), without what the provider records by itself.
 */
export type PinnedMapSpecInput = CoreSpecInput;

export type { LiveAbi, CodecDecl, MapFlagName, MapTypeName, ContentEntry, InnerMapSpec, ContentsDrift };

type InputsBesideContents = Omit<PinnedMapSpecInput, "contents">;

/**
 * The arguments of a PinnedMap: the inputs of docs/design.md, each a Pulumi Input.
 * The shape (and every rule) comes from the zod schema PinnedMapSpecInputSchema.
 */
export type PinnedMapArgs = { [K in keyof InputsBesideContents]: pulumi.Input<InputsBesideContents[K]> } & {
  /**
   * The entries: an array of { key?, value?, perCpuValues? }, or (maps with
   * keys) an object keyed by each key's notation, as the state records them
   * (strings as they are, numbers and structs as JSON; values as values).
   */
  contents?: pulumi.Input<ContentEntry[] | Record<string, unknown>>;
};

// The inputs that read-back fills in for PinnedMap.get (besides pinPath).
const READ_BACK_INPUTS = [
  "mapType", "keySize", "valueSize", "maxEntries", "flags", "name", "keyType", "valueType", "btf", "contents", "contentsFile",
  "contentsPolicy", "freeze", "innerMap", "ifExists", "permissions", "numaNode", "mapExtra",
] as const satisfies readonly (keyof PinnedMapSpecInput)[];

/**
 * A pinned eBPF map managed by Pulumi. `pulumi up` makes the kernel match the
 * declaration (creating, reconciling contents as a delta, or swapping in a new
 * map atomically when the ABI changes); `pulumi refresh` and
 * `pulumi preview --refresh --expect-no-changes` report drift; `pulumi destroy`
 * unpins the map, only while the pin still holds the map this resource made.
 * The resource ID is the pin path it was created at.
 */
export class PinnedMap extends pulumi.dynamic.Resource {
  /** Absolute path of the pin inside a bpffs mount. */
  declare public readonly pinPath: pulumi.Output<string>;
  /** Map type in bpftool's spelling (hash, array, lpm_trie, …). */
  declare public readonly mapType: pulumi.Output<MapTypeName>;
  /** Key size in bytes, with implied sizes filled in. */
  declare public readonly keySize: pulumi.Output<number>;
  /** Value size in bytes (per CPU for per-CPU maps). */
  declare public readonly valueSize: pulumi.Output<number>;
  /** Maximum number of entries as declared (defaults filled in). */
  declare public readonly maxEntries: pulumi.Output<number>;
  /** Declared map flags, lower case without BPF_F_, in bit order. */
  declare public readonly flags: pulumi.Output<MapFlagName[]>;
  /** Kernel map name (≤ 15 chars), if declared. */
  declare public readonly name: pulumi.Output<string | undefined>;
  /** Key codec (default hex). */
  declare public readonly keyType: pulumi.Output<CodecDecl | undefined>;
  /** Value codec (default hex). */
  declare public readonly valueType: pulumi.Output<CodecDecl | undefined>;
  /** Whether the map carries BTF of its codecs, if declared (undeclared: true where every codec has a BTF form). */
  declare public readonly btf: pulumi.Output<boolean | undefined>;
  /** Declared entries in canonical notation, keyed by key (queue, stack, bloom filter: an array in push order); after a refresh, the live ones. Absent with contentsFile. */
  declare public readonly contents: pulumi.Output<ContentEntry[] | Record<string, unknown> | undefined>;
  /** The JSON Lines file the entries come from, when given instead of contents. */
  declare public readonly contentsFile: pulumi.Output<string | undefined>;
  /** With contentsFile: the digest of its entries (after a refresh, of the live ones), kept in state instead of them. */
  declare public readonly contentsFileDigest: pulumi.Output<string | undefined>;
  /**
   * With contentsFile in merge mode: the keys the file declared, packed
   * (sorted, delta-encoded, deflated, base64; no values), so that the next
   * update deletes the keys the file dropped and only those.
   */
  declare public readonly contentsFileKeys: pulumi.Output<string | undefined>;
  /** "exact" (default): only declared entries; "merge": only declared keys are managed. */
  declare public readonly contentsPolicy: pulumi.Output<"exact" | "merge">;
  /** Whether the map is frozen after populating. */
  declare public readonly freeze: pulumi.Output<boolean>;
  /** Inner map template of array_of_maps / hash_of_maps. */
  declare public readonly innerMap: pulumi.Output<InnerMapSpec | undefined>;
  /** What create did when the pin path was taken: fail, adopt or replace. */
  declare public readonly ifExists: pulumi.Output<"fail" | "adopt" | "replace">;
  /** Mode, uid and gid applied to the pin file. */
  declare public readonly permissions: pulumi.Output<{ mode?: number; uid?: number; gid?: number } | undefined>;
  /** NUMA node the map was created on, if declared. */
  declare public readonly numaNode: pulumi.Output<number | undefined>;
  /** map_extra (bloom filter hash count, arena address), if declared. */
  declare public readonly mapExtra: pulumi.Output<number | undefined>;
  /** The kernel's map ID of the map this resource manages. */
  declare public readonly mapId: pulumi.Output<number>;
  /** Type, sizes, max entries and flags as read back from the kernel. */
  declare public readonly abi: pulumi.Output<LiveAbi>;
  /** Whether the map is frozen, read back from the map fd's fdinfo. */
  declare public readonly frozen: pulumi.Output<boolean>;
  /** Number of entries present in the map (arrays: non-zero indices). */
  declare public readonly entryCount: pulumi.Output<number>;
  /** sha256 over the managed entries, independent of order and notation. */
  declare public readonly contentsDigest: pulumi.Output<string>;
  /**
   * Set by a refresh that found the live contents differ from the declared
   * ones: the keys added, changed and removed behind Pulumi's back. Cleared
   * by the next update.
   */
  declare public readonly drift: pulumi.Output<ContentsDrift | undefined>;

  /**
   * Declares a pinned map. Inputs are validated before any syscall; a failure
   * names the property (with the entry index) and the rule.
   */
  constructor(name: string, args: PinnedMapArgs, opts?: pulumi.CustomResourceOptions) {
    // Every property is named (as undefined, so not sent) so that each becomes
    // an Output the provider fills in: the outputs, and the inputs the user
    // left out (keySize implied by a codec, freeze's default, …), which
    // would otherwise stay undefined in the program.
    const outputs = {
      mapId: undefined, abi: undefined, frozen: undefined, entryCount: undefined, contentsDigest: undefined, drift: undefined,
      contentsFileDigest: undefined, contentsFileKeys: undefined,
    };
    const unset = Object.fromEntries(READ_BACK_INPUTS.map((key) => [key, undefined]));
    super(stubProvider, name, { ...unset, ...args, ...outputs }, opts, "ebpf", "PinnedMap");
  }

  /**
   * Reads the map pinned at `pinPath` without managing it: its ABI, and its
   * contents with codecs derived from its BTF where it has BTF (field
   * names), else as hex. Destroying the stack leaves the map alone.
   */
  public static get(name: string, pinPath: pulumi.Input<string>, opts?: pulumi.CustomResourceOptions): PinnedMap {
    // Every property is named (as undefined) so that the resource gets an
    // Output for each one read back, not only for pinPath and the outputs;
    // undefined inputs are not sent, so read() still sees an unmanaged map.
    const unread = Object.fromEntries(READ_BACK_INPUTS.map((key) => [key, undefined]));
    return new PinnedMap(name, { ...unread, pinPath } as PinnedMapArgs, { ...opts, id: pinPath });
  }
}
