"""The gRPC gateway: participants' door to one node (see proto/flchain/v1/gateway.proto)."""
