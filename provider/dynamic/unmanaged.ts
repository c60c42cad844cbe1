// PinnedMap.get: a read of a map this stack does not manage. It reports the
// map's ABI and, where the core can express the map as a spec, its contents
// as hex, and is never created, updated or deleted.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { isEbpfError, observePinnedMap, specOfLiveMap, SpecError } from "../core";
import { liveInputs, outputsOf } from "./properties";

/** What read returns for a resource that no longer exists. */
export const GONE = { id: undefined, props: {} } as unknown as dynamic.ReadResult;

/** Reads a map this stack does not manage: its ABI and, where decodable as hex, contents. */
export function readUnmanaged(pinPath: string): dynamic.ReadResult {
  const live = specOfLiveMap(pinPath);
  if (live === undefined) return GONE;
  let props: Record<string, unknown> = { pinPath, abi: live.abi, mapId: live.mapId };
  if (live.spec === undefined) return { id: pinPath, props };
  try {
    const observed = observePinnedMap(live.spec);
    if (observed.status === "ok") {
      props = { ...liveInputs(live.spec, observed, observed.observation.contents), ...outputsOf(observed.observation) };
    }
  } catch (error) {
    // A map whose contents cannot be read still reports its ABI.
    if (!(error instanceof SpecError) && !isEbpfError(error)) throw error;
  }
  return { id: pinPath, props };
}
