// What the agent and fleet status read from a stack's checkpoint: its
// PinnedMaps and the drift the last refresh recorded on them.
import type * as auto from "@pulumi/pulumi/automation";

import type { MapDrift } from "./report";

interface ResourceState {
  type?: string;
  id?: string;
  outputs?: Record<string, unknown>;
}

/** Whether a checkpoint resource is a PinnedMap (the dynamic provider's `.../ebpf:PinnedMap` type). */
const isPinnedMap = (resource: ResourceState): boolean => typeof resource.type === "string" && resource.type.endsWith(":PinnedMap");

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** The PinnedMaps of a checkpoint and the drift recorded on each (refresh sets `drift`; an update clears it). */
export function pinnedMapsOf(deployment: auto.Deployment): { maps: number; drift: MapDrift[] } {
  const resources = ((deployment.deployment as { resources?: ResourceState[] } | undefined)?.resources ?? []).filter(isPinnedMap);
  const drift: MapDrift[] = [];
  for (const resource of resources) {
    const recorded = resource.outputs?.drift as Record<string, unknown> | undefined;
    if (!recorded) continue;
    const entry = { map: String(resource.outputs?.pinPath ?? resource.id), added: list(recorded.added), changed: list(recorded.changed), removed: list(recorded.removed) };
    if (entry.added.length + entry.changed.length + entry.removed.length > 0) drift.push(entry);
  }
  return { maps: resources.length, drift };
}
