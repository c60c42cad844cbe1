// The gRPC pieces the plugin serves the engine with: @grpc/grpc-js and the
// engine protocol's generated messages, both as @pulumi/pulumi ships them.
// They are resolved from @pulumi/pulumi's own directory (a peer dependency,
// the one the user installed), so the plugin speaks exactly the protocol of
// that release and adds no dependency of its own.
import { createRequire } from "node:module";

const fromPulumi = createRequire(require.resolve("@pulumi/pulumi/package.json"));

/* eslint-disable @typescript-eslint/no-explicit-any -- generated protobuf modules without usable types */
/** @grpc/grpc-js, as @pulumi/pulumi resolves it. */
export const grpc: any = fromPulumi("@grpc/grpc-js");
/** The ResourceProvider service definition (pulumirpc). */
export const providerService: any = fromPulumi("./proto/provider_grpc_pb").ResourceProviderService;
/** The ResourceProvider messages (pulumirpc). */
export const providerMessages: any = fromPulumi("./proto/provider_pb");
/** PluginInfo (pulumirpc). */
export const pluginMessages: any = fromPulumi("./proto/plugin_pb");
/** google.protobuf.Struct, with fromJavaScript/toJavaScript. */
export const Struct: any = fromPulumi("google-protobuf/google/protobuf/struct_pb").Struct;
/** google.protobuf.Empty. */
export const Empty: any = fromPulumi("google-protobuf/google/protobuf/empty_pb").Empty;
/* eslint-enable @typescript-eslint/no-explicit-any */
/* eslint-disable @typescript-eslint/no-explicit-any */
/** The Engine service client (pulumirpc), for Log. */
export const EngineClient: any = fromPulumi("./proto/engine_grpc_pb").EngineClient;
/** The Engine messages (pulumirpc). */
export const engineMessages: any = fromPulumi("./proto/engine_pb");
/* eslint-enable @typescript-eslint/no-explicit-any */
