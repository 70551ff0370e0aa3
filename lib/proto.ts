// The generated protocol: message classes (protobufjs static) and grpc-js service definitions.
export { l0 } from "../gen/proto/l0.js";
export * from "../gen/proto/services.js";
