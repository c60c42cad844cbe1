// The provider plugin's gRPC server: the engine's ResourceProvider protocol
// over the PinnedMap plugin provider. Our own small server rather than
// @pulumi/pulumi's `provider.main`, whose Diff drops the detailed diff and
// whose Read fails on a request without properties (every import).
import { inRequest } from "./enginelog";
import { Empty, grpc, pluginMessages, providerMessages, providerService, Struct } from "./grpc";
import { pinnedMapProvider, type DiffAnswer } from "./provider";

/** The one resource type the plugin serves. */
export const PINNED_MAP_TYPE = "ebpf:index:PinnedMap";

/** What the server says about itself. */
export interface PluginIdentity {
  /** The plugin version (GetPluginInfo). */
  version: string;
  /** The package schema, as JSON text (GetSchema). */
  schema: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- generated protobuf messages */
type Call = { request: any };
type Callback = (error: unknown, response?: unknown) => void;

/** A Struct as plain JSON values (undefined properties dropped: a Struct cannot hold them). */
const toStruct = (value: Record<string, unknown>): any => Struct.fromJavaScript(JSON.parse(JSON.stringify(value)));
const fromStruct = (struct: any): Record<string, unknown> => (struct ? struct.toJavaScript() : {});

const KIND = providerMessages.PropertyDiff.Kind;
const KINDS = { add: KIND.ADD, delete: KIND.DELETE, update: KIND.UPDATE } as const;

/** The resource type of a URN (`urn:pulumi:stack::project::type::name`). */
function typeOf(urn: string): string {
  const qualified = urn.split("::")[2] ?? "";
  return qualified.split("$").pop() ?? "";
}

/**
 * Runs one request and turns a thrown error into a gRPC error with its
 * message. `resource`: a request about a resource, refused unless its type is
 * the one the plugin serves.
 */
function handler(body: (request: any) => Promise<unknown>, resource = true): (call: Call, callback: Callback) => void {
  return (call, callback) => {
    const urn: unknown = resource ? call.request.getUrn() : undefined;
    if (typeof urn === "string" && urn !== "" && typeOf(urn) !== PINNED_MAP_TYPE) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `unknown resource type ${typeOf(urn)}; this plugin serves ${PINNED_MAP_TYPE}` });
      return;
    }
    inRequest(typeof urn === "string" ? urn : "", () => body(call.request)).then(
      (response) => callback(null, response),
      (error: unknown) => callback({ code: grpc.status.UNKNOWN, details: error instanceof Error ? error.message : String(error) }),
    );
  };
}

/** A DiffResponse: never a replacement (see detailed.ts), the detailed diff when there is one. */
function diffResponse(answer: DiffAnswer): any {
  const response = new providerMessages.DiffResponse();
  const changes = providerMessages.DiffResponse.DiffChanges;
  response.setChanges(answer.changes ? changes.DIFF_SOME : changes.DIFF_NONE);
  response.setDeletebeforereplace(false);
  if (answer.detailedDiff) {
    const map = response.getDetaileddiffMap();
    for (const [path, change] of Object.entries(answer.detailedDiff)) {
      const diff = new providerMessages.PropertyDiff();
      diff.setKind(KINDS[change]);
      diff.setInputdiff(true);
      map.set(path, diff);
    }
    response.setHasdetaileddiff(true);
    response.setDiffsList([...new Set(Object.keys(answer.detailedDiff).map((path) => path.split(/[.[]/)[0]!))]);
  }
  return response;
}

/** The ResourceProvider methods the plugin implements; the rest answer UNIMPLEMENTED, which the engine expects. */
function implementation(identity: PluginIdentity): Record<string, (call: Call, callback: Callback) => void> {
  return {
    getPluginInfo: (_call, callback) => {
      const info = new pluginMessages.PluginInfo();
      info.setVersion(identity.version);
      callback(null, info);
    },
    getSchema: handler(async (request) => {
      if (request.getVersion() !== 0) throw new Error(`unsupported schema version ${request.getVersion()}`);
      const response = new providerMessages.GetSchemaResponse();
      response.setSchema(identity.schema);
      return response;
    }, false),
    configure: handler(async () => {
      // Secrets arrive unwrapped (the engine keeps them secret in the state); no resource references are taken.
      const response = new providerMessages.ConfigureResponse();
      response.setAcceptsecrets(false);
      response.setAcceptresources(false);
      response.setSupportspreview(false);
      return response;
    }, false),
    cancel: (_call, callback) => callback(null, new Empty()),
    check: handler(async (request) => {
      const answer = await pinnedMapProvider.check(fromStruct(request.getOlds()), fromStruct(request.getNews()));
      const response = new providerMessages.CheckResponse();
      response.setInputs(toStruct(answer.inputs));
      response.setFailuresList(answer.failures.map((failure) => {
        const message = new providerMessages.CheckFailure();
        message.setProperty(failure.property);
        message.setReason(failure.reason);
        return message;
      }));
      return response;
    }),
    diff: handler(async (request) =>
      diffResponse(await pinnedMapProvider.diff(request.getId(), fromStruct(request.getOlds()), fromStruct(request.getNews())))),
    create: handler(async (request) => {
      const result = await pinnedMapProvider.create(fromStruct(request.getProperties()));
      const response = new providerMessages.CreateResponse();
      response.setId(result.id);
      response.setProperties(toStruct(result.outs));
      return response;
    }),
    read: handler(async (request) => {
      const answer = await pinnedMapProvider.read(request.getId(), fromStruct(request.getProperties()));
      const response = new providerMessages.ReadResponse();
      // No ID and no properties: the resource is gone (refresh) or does not exist (import).
      if (answer.id === undefined) return response;
      response.setId(answer.id);
      response.setProperties(toStruct(answer.props));
      if (answer.inputs) response.setInputs(toStruct(answer.inputs));
      return response;
    }),
    update: handler(async (request) => {
      const result = await pinnedMapProvider.update(request.getId(), fromStruct(request.getOlds()), fromStruct(request.getNews()));
      const response = new providerMessages.UpdateResponse();
      response.setProperties(toStruct(result.outs));
      return response;
    }),
    delete: handler(async (request) => {
      await pinnedMapProvider.delete(request.getId(), fromStruct(request.getProperties()));
      return new Empty();
    }),
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * Serves the plugin on 127.0.0.1 (a port the system picks) and resolves to
 * that port, which the engine reads from the plugin's first line of stdout.
 * Rejects when the port cannot be bound.
 */
export function servePlugin(identity: PluginIdentity): Promise<number> {
  const server = new grpc.Server({ "grpc.max_receive_message_length": 400 << 20, "grpc.max_send_message_length": 400 << 20 });
  server.addService(providerService, implementation(identity));
  return new Promise((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error: Error | null, port: number) => {
      if (error) reject(error);
      else resolve(port);
    });
  });
}
