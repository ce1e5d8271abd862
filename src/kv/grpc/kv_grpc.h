// The public face of src/kv/grpc, the gRPC key-value API micedb.kv.v1.Kv
// (proto/micedb/kv_service.proto, docs/kv-grpc.md):
//   KvGrpcService  (kv/grpc/service.h)       the service, on any KvBackend
//   KvClient       (kv/grpc/client.h)        a blocking client with deadlines and retries
//   KvApi          (kv/grpc/kv_api.h)        request checks and translation to kv Commands
//   ScanPager      (kv/grpc/scan_pager.h)    a Scan served as bounded backend pages
//   ToGrpcStatus   (kv/grpc/status_codes.h)  our Status at the gRPC edge, both ways
#pragma once

#include "kv/grpc/client.h"
#include "kv/grpc/kv_api.h"
#include "kv/grpc/service.h"
#include "kv/grpc/status_codes.h"
