// The PinnedMap resource as the provider plugin serves it. The engine speaks
// the same property bags to a plugin as to the dynamic provider, so check,
// create, update, delete and refresh are the dynamic provider's own methods
// (provider/dynamic, over the one lifecycle core): the two adapters cannot
// drift apart. What a plugin adds is here: a per-property detailed diff, and
// a read without recorded state, which is `pulumi import` (and a YAML `get`).
import { provider as dynamicProvider } from "../dynamic";
import { hasUnknown } from "../dynamic/properties";
import { detailedDiffOf, type PropertyChange } from "./detailed";
import { importLiveMap } from "./importid";

/** What check answers: the canonical inputs, or why they are refused. */
export interface CheckAnswer {
  inputs: Record<string, unknown>;
  failures: { property: string; reason: string }[];
}

/** What diff answers. `detailedDiff` is undefined when the change cannot be told yet (unknown inputs). */
export interface DiffAnswer {
  changes: boolean;
  detailedDiff?: Record<string, PropertyChange>;
}

/** What read answers; `id` undefined means the map is gone (or, for an import, does not exist). */
export interface ReadAnswer {
  id?: string;
  props: Record<string, unknown>;
  inputs?: Record<string, unknown>;
}

/** The PinnedMap plugin provider. Every method throws with a message naming the map and the cause. */
export const pinnedMapProvider = {
  async check(olds: Record<string, unknown>, news: Record<string, unknown>): Promise<CheckAnswer> {
    const result = await dynamicProvider.check(olds, news);
    return { inputs: result.inputs ?? news, failures: (result.failures ?? []).map((f) => ({ property: f.property, reason: f.reason })) };
  },

  async diff(id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<DiffAnswer> {
    // The dynamic provider's diff also prints why a new kernel map is built.
    const result = await dynamicProvider.diff(id, olds, news);
    const changes = result.changes !== false;
    if (!changes || hasUnknown(news)) return { changes };
    return { changes, detailedDiff: detailedDiffOf(olds, news) };
  },

  async create(inputs: Record<string, unknown>): Promise<{ id: string; outs: Record<string, unknown> }> {
    const result = await dynamicProvider.create(inputs);
    return { id: result.id, outs: result.outs as Record<string, unknown> };
  },

  /**
   * A refresh (recorded state in `props`), or an import of the map the ID
   * names (no state: `pulumi import`, the `import` resource option, a YAML
   * `get`), which reports the inputs that declare the live map.
   */
  async read(id: string, props: Record<string, unknown>): Promise<ReadAnswer> {
    if (props.mapType === undefined && props.pinPath === undefined) {
      const imported = importLiveMap(id);
      return imported ?? { props: {} };
    }
    const result = await dynamicProvider.read(id, props);
    if (!result.id) return { props: {} };
    return { id: result.id, props: result.props as Record<string, unknown>, inputs: result.inputs as Record<string, unknown> | undefined };
  },

  async update(id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ outs: Record<string, unknown> }> {
    const result = await dynamicProvider.update(id, olds, news);
    return { outs: (result.outs ?? {}) as Record<string, unknown> };
  },

  async delete(id: string, props: Record<string, unknown>): Promise<void> {
    await dynamicProvider.delete(id, props);
  },
};
