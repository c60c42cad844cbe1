// Thin N-API binding to the map commands of bpf(2).
//
// Deliberately mechanical: every function takes fds, integers and byte buffers,
// issues one syscall (or one batch syscall), and throws an Error carrying the
// errno name, the errno number and the bpf command on failure. Sizes are
// checked in the TypeScript layer, which knows the map's key and value size;
// here we only refuse buffers that are too small for what the kernel will
// touch, so a caller mistake can never make the kernel write past a buffer.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace {

// BPF_OBJ_PIN / BPF_OBJ_GET relative to a directory fd (Linux 6.5). The
// distribution's uapi header may predate it, so the attribute layout of
// those two commands is spelled out here; it is a prefix of union bpf_attr.
constexpr uint32_t kBpfFPathFd = 1U << 14;
struct ObjAttr {
  uint64_t pathname;
  uint32_t bpf_fd;
  uint32_t file_flags;
  int32_t path_fd;
};
static_assert(sizeof(ObjAttr) <= sizeof(union bpf_attr), "ObjAttr must fit in bpf_attr");

// struct bpf_map_info as of Linux 6.18. The distribution's uapi header may be
// older; the kernel copies min(our size, its size) and requires any tail it
// does not know to be zero, which a zeroed struct satisfies.
struct MapInfo {
  uint32_t type;
  uint32_t id;
  uint32_t key_size;
  uint32_t value_size;
  uint32_t max_entries;
  uint32_t map_flags;
  char name[16];
  uint32_t ifindex;
  uint32_t btf_vmlinux_value_type_id;
  uint64_t netns_dev;
  uint64_t netns_ino;
  uint32_t btf_id;
  uint32_t btf_key_type_id;
  uint32_t btf_value_type_id;
  uint32_t btf_vmlinux_id;
  uint64_t map_extra;
  uint64_t hash;
  uint32_t hash_size;
  uint32_t pad;
} __attribute__((aligned(8)));

long SysBpf(int cmd, union bpf_attr* attr) {
  return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

const char* CommandName(int cmd) {
  switch (cmd) {
    case BPF_MAP_CREATE: return "BPF_MAP_CREATE";
    case BPF_MAP_LOOKUP_ELEM: return "BPF_MAP_LOOKUP_ELEM";
    case BPF_MAP_UPDATE_ELEM: return "BPF_MAP_UPDATE_ELEM";
    case BPF_MAP_DELETE_ELEM: return "BPF_MAP_DELETE_ELEM";
    case BPF_MAP_GET_NEXT_KEY: return "BPF_MAP_GET_NEXT_KEY";
    case BPF_OBJ_PIN: return "BPF_OBJ_PIN";
    case BPF_OBJ_GET: return "BPF_OBJ_GET";
    case BPF_MAP_GET_NEXT_ID: return "BPF_MAP_GET_NEXT_ID";
    case BPF_MAP_GET_FD_BY_ID: return "BPF_MAP_GET_FD_BY_ID";
    case BPF_OBJ_GET_INFO_BY_FD: return "BPF_OBJ_GET_INFO_BY_FD";
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM: return "BPF_MAP_LOOKUP_AND_DELETE_ELEM";
    case BPF_MAP_FREEZE: return "BPF_MAP_FREEZE";
    case BPF_MAP_LOOKUP_BATCH: return "BPF_MAP_LOOKUP_BATCH";
    case BPF_MAP_LOOKUP_AND_DELETE_BATCH: return "BPF_MAP_LOOKUP_AND_DELETE_BATCH";
    case BPF_MAP_UPDATE_BATCH: return "BPF_MAP_UPDATE_BATCH";
    case BPF_MAP_DELETE_BATCH: return "BPF_MAP_DELETE_BATCH";
    case BPF_BTF_LOAD: return "BPF_BTF_LOAD";
    case BPF_BTF_GET_FD_BY_ID: return "BPF_BTF_GET_FD_BY_ID";
    default: return "BPF_UNKNOWN";
  }
}

std::string ErrnoName(int err) {
  // Kernel-internal errnos that leak to user space through bpf(2).
  switch (err) {
    case 524: return "ENOTSUPP";
    case 525: return "ETOOSMALL";
    default: break;
  }
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, const char* operation, int err) {
  std::string code = ErrnoName(err);
  std::string message = std::string(operation) + ": " + code + " (" + strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, "bpf"));
  error.Set("command", Napi::String::New(env, operation));
  return error;
}

// The error of a filesystem syscall (openat, mkdirat, ...): like ErrnoError,
// with `syscall` and `command` naming the call.
Napi::Value ThrowSyscall(Napi::Env env, const char* name, int err) {
  Napi::Error error = ErrnoError(env, name, err);
  error.Set("syscall", Napi::String::New(env, name));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowErrno(Napi::Env env, int cmd, int err) {
  ErrnoError(env, CommandName(cmd), err).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Argument helpers: a failed conversion leaves a pending TypeError and returns
// false, so callers just `return env.Undefined()`.
bool ToU32(Napi::Env env, Napi::Value value, const std::string& what, uint32_t* out) {
  if (!value.IsNumber()) {
    ThrowType(env, what + " must be a number");
    return false;
  }
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0 && number <= 4294967295.0) || number != static_cast<double>(static_cast<uint64_t>(number))) {
    ThrowType(env, what + " must be an integer in 0..2^32-1");
    return false;
  }
  *out = static_cast<uint32_t>(number);
  return true;
}

bool GetU32(const Napi::CallbackInfo& info, size_t index, const char* what, uint32_t* out) {
  return ToU32(info.Env(), info[index], what, out);
}

bool GetU64(const Napi::CallbackInfo& info, size_t index, const char* what, uint64_t* out) {
  if (info[index].IsBigInt()) {
    bool lossless = false;
    *out = info[index].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) {
      ThrowType(info.Env(), std::string(what) + " must fit in 64 bits");
      return false;
    }
    return true;
  }
  if (!info[index].IsNumber()) {
    ThrowType(info.Env(), std::string(what) + " must be a number or bigint");
    return false;
  }
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (!(value >= 0 && value <= 9007199254740991.0) || value != static_cast<double>(static_cast<uint64_t>(value))) {
    ThrowType(info.Env(), std::string(what) + " must be a non-negative safe integer");
    return false;
  }
  *out = static_cast<uint64_t>(value);
  return true;
}

bool GetFd(const Napi::CallbackInfo& info, size_t index, int* out) {
  uint32_t fd = 0;
  if (!GetU32(info, index, "fd", &fd)) return false;
  if (fd > INT32_MAX) {
    ThrowType(info.Env(), "fd out of range");
    return false;
  }
  *out = static_cast<int>(fd);
  return true;
}

struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;
};

// Accepts a Uint8Array (Buffer included), or null/undefined when `optional`.
bool GetBytes(const Napi::CallbackInfo& info, size_t index, const char* what, bool optional, Bytes* out) {
  Napi::Value value = info[index];
  if (optional && (value.IsNull() || value.IsUndefined())) {
    *out = Bytes{};
    return true;
  }
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(info.Env(), std::string(what) + " must be a Uint8Array or Buffer");
    return false;
  }
  Napi::Uint8Array array = value.As<Napi::Uint8Array>();
  out->data = array.Data();
  out->length = array.ByteLength();
  return true;
}

bool GetString(const Napi::CallbackInfo& info, size_t index, const char* what, std::string* out) {
  if (!info[index].IsString()) {
    ThrowType(info.Env(), std::string(what) + " must be a string");
    return false;
  }
  *out = info[index].As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) {
    ThrowType(info.Env(), std::string(what) + " must not contain NUL");
    return false;
  }
  return true;
}

uint64_t Ptr(const void* pointer) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(pointer)); }

// mapCreate({ mapType, keySize, valueSize, maxEntries, mapFlags, innerMapFd,
//             numaNode, mapName, mapExtra, mapIfindex, btfFd, btfKeyTypeId,
//             btfValueTypeId }) -> fd
Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) return ThrowType(env, "mapCreate expects an attributes object");
  Napi::Object attrs = info[0].As<Napi::Object>();
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  // Absent attributes stay zero.
  auto u32 = [&](const char* key, uint32_t* out) -> bool {
    Napi::Value value = attrs.Get(key);
    return value.IsUndefined() || ToU32(env, value, key, out);
  };
  uint32_t inner_map_fd = 0, map_ifindex = 0, btf_fd = 0;
  if (!u32("mapType", &attr.map_type) || !u32("keySize", &attr.key_size) || !u32("valueSize", &attr.value_size) ||
      !u32("maxEntries", &attr.max_entries) || !u32("mapFlags", &attr.map_flags) ||
      !u32("innerMapFd", &inner_map_fd) || !u32("numaNode", &attr.numa_node) || !u32("mapIfindex", &map_ifindex) ||
      !u32("btfFd", &btf_fd) || !u32("btfKeyTypeId", &attr.btf_key_type_id) ||
      !u32("btfValueTypeId", &attr.btf_value_type_id)) {
    return env.Undefined();
  }
  attr.inner_map_fd = inner_map_fd;
  attr.map_ifindex = map_ifindex;
  attr.btf_fd = btf_fd;
  Napi::Value extra = attrs.Get("mapExtra");
  if (extra.IsBigInt()) {
    bool lossless = false;
    attr.map_extra = extra.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) return ThrowType(env, "mapExtra must fit in 64 bits");
  } else if (extra.IsNumber()) {
    double number = extra.As<Napi::Number>().DoubleValue();
    if (!(number >= 0 && number <= 9007199254740991.0)) return ThrowType(env, "mapExtra must be a safe integer");
    attr.map_extra = static_cast<uint64_t>(number);
  } else if (!extra.IsUndefined()) {
    return ThrowType(env, "mapExtra must be a number or bigint");
  }
  Napi::Value name = attrs.Get("mapName");
  if (name.IsString()) {
    std::string text = name.As<Napi::String>().Utf8Value();
    if (text.size() >= sizeof(attr.map_name)) return ThrowType(env, "mapName must be at most 15 bytes");
    memcpy(attr.map_name, text.data(), text.size());
  } else if (!name.IsUndefined()) {
    return ThrowType(env, "mapName must be a string");
  }
  long fd = SysBpf(BPF_MAP_CREATE, &attr);
  if (fd < 0) return ThrowErrno(env, BPF_MAP_CREATE, errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// The element commands that take (fd, key|null, value, flags):
//   lookupElem(fd, key|null, value, flags) -> true, or false when the key is absent (ENOENT)
//   lookupAndDeleteElem(fd, key|null, value, flags) -> true, or false when empty/absent (ENOENT)
//   updateElem(fd, key|null, value|null, flags): BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK
template <int Cmd>
Napi::Value ElemWithValue(const Napi::CallbackInfo& info) {
  constexpr bool kLookup = Cmd != BPF_MAP_UPDATE_ELEM;
  Napi::Env env = info.Env();
  int fd;
  Bytes key, value;
  uint64_t flags;
  if (!GetFd(info, 0, &fd) || !GetBytes(info, 1, "key", true, &key) ||
      !GetBytes(info, 2, "value", /*optional=*/!kLookup, &value) || !GetU64(info, 3, "flags", &flags)) {
    return env.Undefined();
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = fd;
  attr.key = Ptr(key.data);
  attr.value = Ptr(value.data);
  attr.flags = flags;
  if (SysBpf(Cmd, &attr) < 0) {
    if (kLookup && errno == ENOENT) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, Cmd, errno);
  }
  return kLookup ? Napi::Value(Napi::Boolean::New(env, true)) : env.Undefined();
}

// deleteElem(fd, key, flags) -> true, or false when the key was absent (ENOENT).
Napi::Value DeleteElem(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  Bytes key;
  uint64_t flags;
  if (!GetFd(info, 0, &fd) || !GetBytes(info, 1, "key", true, &key) || !GetU64(info, 2, "flags", &flags)) {
    return env.Undefined();
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = fd;
  attr.key = Ptr(key.data);
  attr.flags = flags;
  if (SysBpf(BPF_MAP_DELETE_ELEM, &attr) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, BPF_MAP_DELETE_ELEM, errno);
  }
  return Napi::Boolean::New(env, true);
}

// getNextKey(fd, key|null, nextKey) -> true, or false at the end of the map (ENOENT).
Napi::Value GetNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  Bytes key, next;
  if (!GetFd(info, 0, &fd) || !GetBytes(info, 1, "key", true, &key) || !GetBytes(info, 2, "nextKey", false, &next)) {
    return env.Undefined();
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = fd;
  attr.key = Ptr(key.data);
  attr.next_key = Ptr(next.data);
  if (SysBpf(BPF_MAP_GET_NEXT_KEY, &attr) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, BPF_MAP_GET_NEXT_KEY, errno);
  }
  return Napi::Boolean::New(env, true);
}

// The state of one batch syscall, shared by the sync and async forms.
struct BatchCall {
  int cmd = 0;
  int fd = -1;
  Bytes in_batch, out_batch, keys, values;
  uint32_t count = 0;
  uint64_t elem_flags = 0, flags = 0;
  // Results.
  uint32_t done_count = 0;
  int err = 0;

  void Run() {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.batch.map_fd = fd;
    attr.batch.in_batch = Ptr(in_batch.data);
    attr.batch.out_batch = Ptr(out_batch.data);
    attr.batch.keys = Ptr(keys.data);
    attr.batch.values = Ptr(values.data);
    attr.batch.count = count;
    attr.batch.elem_flags = elem_flags;
    attr.batch.flags = flags;
    err = SysBpf(cmd, &attr) < 0 ? errno : 0;
    // The kernel reports how many elements it processed, also on a failure
    // inside its element loop. An up-front rejection (bad elem_flags, a
    // read-only fd, ...) returns before the kernel writes count back, which
    // leaves our request in it. A failure inside the loop always stops short
    // of the requested count, so an unchanged count on a failure means nothing
    // was processed. (A lookup's ENOENT is not a failure: it may legitimately
    // report every requested element.)
    done_count = attr.batch.count;
    if (err != 0 && !(IsLookup() && err == ENOENT) && count != 0 && done_count == count) done_count = 0;
  }

  // Lookups end with ENOENT once the map is exhausted: that is `done`, not an error.
  bool IsLookup() const { return cmd == BPF_MAP_LOOKUP_BATCH || cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH; }

  Napi::Value Result(Napi::Env env) const {
    if (IsLookup()) {
      if (err != 0 && err != ENOENT) return Failure(env);
      Napi::Object result = Napi::Object::New(env);
      result.Set("count", Napi::Number::New(env, done_count));
      result.Set("done", Napi::Boolean::New(env, err == ENOENT));
      return result;
    }
    if (err != 0) return Failure(env);
    return Napi::Number::New(env, done_count);
  }

  Napi::Error MakeError(Napi::Env env) const {
    Napi::Error error = ErrnoError(env, CommandName(cmd), err);
    error.Set("count", Napi::Number::New(env, done_count));
    return error;
  }

  Napi::Value Failure(Napi::Env env) const {
    MakeError(env).ThrowAsJavaScriptException();
    return env.Undefined();
  }
};

// Parses (fd, inBatch, outBatch, keys, values, count, elemFlags, flags) for
// lookups, or (fd, keys, values, count, elemFlags, flags) for update, or
// (fd, keys, count, elemFlags, flags) for delete.
bool ParseBatch(const Napi::CallbackInfo& info, int cmd, BatchCall* call) {
  call->cmd = cmd;
  size_t i = 0;
  if (!GetFd(info, i++, &call->fd)) return false;
  bool lookup = cmd == BPF_MAP_LOOKUP_BATCH || cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH;
  if (lookup) {
    if (!GetBytes(info, i++, "inBatch", true, &call->in_batch) ||
        !GetBytes(info, i++, "outBatch", false, &call->out_batch)) {
      return false;
    }
  }
  if (!GetBytes(info, i++, "keys", false, &call->keys)) return false;
  if (cmd != BPF_MAP_DELETE_BATCH && !GetBytes(info, i++, "values", false, &call->values)) return false;
  if (!GetU32(info, i++, "count", &call->count) || !GetU64(info, i++, "elemFlags", &call->elem_flags) ||
      !GetU64(info, i++, "flags", &call->flags)) {
    return false;
  }
  return true;
}

template <int Cmd>
Napi::Value BatchSync(const Napi::CallbackInfo& info) {
  BatchCall call;
  if (!ParseBatch(info, Cmd, &call)) return info.Env().Undefined();
  call.Run();
  return call.Result(info.Env());
}

// Runs one batch syscall on the libuv thread pool. The buffers are held by
// references for the duration, so the GC cannot free them under the kernel.
class BatchWorker : public Napi::AsyncWorker {
 public:
  BatchWorker(Napi::Env env, const BatchCall& call, const Napi::CallbackInfo& info)
      : Napi::AsyncWorker(env, "pulumi-ebpf:batch"), call_(call), deferred_(Napi::Promise::Deferred::New(env)) {
    Napi::Array held = Napi::Array::New(env);
    for (size_t i = 0; i < info.Length(); i++) held.Set(static_cast<uint32_t>(i), info[i]);
    held_ = Napi::Persistent(held.As<Napi::Object>());
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { call_.Run(); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (call_.err != 0 && !(call_.IsLookup() && call_.err == ENOENT)) {
      deferred_.Reject(call_.MakeError(env).Value());
      return;
    }
    Napi::Value result = call_.Result(env);
    deferred_.Resolve(result);
  }

 private:
  BatchCall call_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference held_;
};

template <int Cmd>
Napi::Value BatchAsync(const Napi::CallbackInfo& info) {
  BatchCall call;
  if (!ParseBatch(info, Cmd, &call)) return info.Env().Undefined();
  BatchWorker* worker = new BatchWorker(info.Env(), call, info);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// freeze(fd)
Napi::Value MapFreeze(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd)) return env.Undefined();
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = fd;
  if (SysBpf(BPF_MAP_FREEZE, &attr) < 0) return ThrowErrno(env, BPF_MAP_FREEZE, errno);
  return env.Undefined();
}

// objPin(fd, path): fails with EEXIST when the path is taken (never replaces).
Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  std::string path;
  if (!GetFd(info, 0, &fd) || !GetString(info, 1, "path", &path)) return env.Undefined();
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.bpf_fd = fd;
  attr.pathname = Ptr(path.c_str());
  if (SysBpf(BPF_OBJ_PIN, &attr) < 0) return ThrowErrno(env, BPF_OBJ_PIN, errno);
  return env.Undefined();
}

// objGet(path, fileFlags) -> fd; fileFlags is 0, BPF_F_RDONLY or BPF_F_WRONLY.
Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  uint32_t file_flags;
  if (!GetString(info, 0, "path", &path) || !GetU32(info, 1, "fileFlags", &file_flags)) return env.Undefined();
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.pathname = Ptr(path.c_str());
  attr.file_flags = file_flags;
  long fd = SysBpf(BPF_OBJ_GET, &attr);
  if (fd < 0) return ThrowErrno(env, BPF_OBJ_GET, errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// mapInfo(fd) -> the whole struct bpf_map_info (mapExtra, netnsDev and netnsIno as bigint).
Napi::Value MapInfoByFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd)) return env.Undefined();
  MapInfo map_info;
  memset(&map_info, 0, sizeof(map_info));
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.info.bpf_fd = fd;
  attr.info.info_len = sizeof(map_info);
  attr.info.info = Ptr(&map_info);
  if (SysBpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0) return ThrowErrno(env, BPF_OBJ_GET_INFO_BY_FD, errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", Napi::Number::New(env, map_info.type));
  out.Set("id", Napi::Number::New(env, map_info.id));
  out.Set("keySize", Napi::Number::New(env, map_info.key_size));
  out.Set("valueSize", Napi::Number::New(env, map_info.value_size));
  out.Set("maxEntries", Napi::Number::New(env, map_info.max_entries));
  out.Set("mapFlags", Napi::Number::New(env, map_info.map_flags));
  out.Set("name", Napi::String::New(env, map_info.name, strnlen(map_info.name, sizeof(map_info.name))));
  out.Set("ifindex", Napi::Number::New(env, map_info.ifindex));
  out.Set("btfVmlinuxValueTypeId", Napi::Number::New(env, map_info.btf_vmlinux_value_type_id));
  out.Set("netnsDev", Napi::BigInt::New(env, map_info.netns_dev));
  out.Set("netnsIno", Napi::BigInt::New(env, map_info.netns_ino));
  out.Set("btfId", Napi::Number::New(env, map_info.btf_id));
  out.Set("btfKeyTypeId", Napi::Number::New(env, map_info.btf_key_type_id));
  out.Set("btfValueTypeId", Napi::Number::New(env, map_info.btf_value_type_id));
  out.Set("btfVmlinuxId", Napi::Number::New(env, map_info.btf_vmlinux_id));
  out.Set("mapExtra", Napi::BigInt::New(env, map_info.map_extra));
  out.Set("infoLength", Napi::Number::New(env, attr.info.info_len));
  return out;
}

// mapGetNextId(startId) -> the next map ID, or 0 when there is none (ENOENT).
Napi::Value MapGetNextId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t start;
  if (!GetU32(info, 0, "startId", &start)) return env.Undefined();
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.start_id = start;
  if (SysBpf(BPF_MAP_GET_NEXT_ID, &attr) < 0) {
    if (errno == ENOENT) return Napi::Number::New(env, 0);
    return ThrowErrno(env, BPF_MAP_GET_NEXT_ID, errno);
  }
  return Napi::Number::New(env, attr.next_id);
}

// mapGetFdById(id, openFlags) -> fd
Napi::Value MapGetFdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id, open_flags;
  if (!GetU32(info, 0, "id", &id) || !GetU32(info, 1, "openFlags", &open_flags)) return env.Undefined();
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_id = id;
  attr.open_flags = open_flags;
  long fd = SysBpf(BPF_MAP_GET_FD_BY_ID, &attr);
  if (fd < 0) return ThrowErrno(env, BPF_MAP_GET_FD_BY_ID, errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// close(fd)
Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd)) return env.Undefined();
  if (close(fd) < 0) {
    ErrnoError(env, "close", errno).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// renameat2(oldPath, newPath, flags): RENAME_NOREPLACE (1) / RENAME_EXCHANGE (2).
Napi::Value Renameat2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string from, to;
  uint32_t flags;
  if (!GetString(info, 0, "oldPath", &from) || !GetString(info, 1, "newPath", &to) ||
      !GetU32(info, 2, "flags", &flags)) {
    return env.Undefined();
  }
  if (syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags) < 0) {
    ErrnoError(env, "renameat2", errno).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// A directory fd argument: a non-negative fd, or null for AT_FDCWD.
bool GetDirFd(const Napi::CallbackInfo& info, size_t index, int* out) {
  if (info[index].IsNull()) {
    *out = AT_FDCWD;
    return true;
  }
  return GetFd(info, index, out);
}

// openDirAt(dirFd|null, name) -> an O_PATH fd of the directory `name`, never
// following a symlink (ELOOP/ENOTDIR when `name` is one).
Napi::Value OpenDirAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dir_fd;
  std::string name;
  if (!GetDirFd(info, 0, &dir_fd) || !GetString(info, 1, "name", &name)) return env.Undefined();
  int fd = openat(dir_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ThrowSyscall(env, "openat", errno);
  return Napi::Number::New(env, fd);
}

// mkdirAt(dirFd, name, mode)
Napi::Value MkdirAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dir_fd;
  std::string name;
  uint32_t mode;
  if (!GetFd(info, 0, &dir_fd) || !GetString(info, 1, "name", &name) || !GetU32(info, 2, "mode", &mode)) {
    return env.Undefined();
  }
  if (mkdirat(dir_fd, name.c_str(), static_cast<mode_t>(mode)) < 0) return ThrowSyscall(env, "mkdirat", errno);
  return env.Undefined();
}

// unlinkAt(dirFd, name, flags): flags 0 (a file) or AT_REMOVEDIR (an empty directory).
Napi::Value UnlinkAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dir_fd;
  std::string name;
  uint32_t flags;
  if (!GetFd(info, 0, &dir_fd) || !GetString(info, 1, "name", &name) || !GetU32(info, 2, "flags", &flags)) {
    return env.Undefined();
  }
  if (unlinkat(dir_fd, name.c_str(), static_cast<int>(flags)) < 0) return ThrowSyscall(env, "unlinkat", errno);
  return env.Undefined();
}

// renameAt2(oldDirFd, oldName, newDirFd, newName, flags): RENAME_NOREPLACE / RENAME_EXCHANGE.
Napi::Value RenameAt2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int old_dir, new_dir;
  std::string from, to;
  uint32_t flags;
  if (!GetFd(info, 0, &old_dir) || !GetString(info, 1, "oldName", &from) || !GetFd(info, 2, &new_dir) ||
      !GetString(info, 3, "newName", &to) || !GetU32(info, 4, "flags", &flags)) {
    return env.Undefined();
  }
  if (syscall(SYS_renameat2, old_dir, from.c_str(), new_dir, to.c_str(), flags) < 0) {
    return ThrowSyscall(env, "renameat2", errno);
  }
  return env.Undefined();
}

// fstatfsType(fd) -> f_type of the filesystem `fd` lies on (O_PATH fds too).
Napi::Value FstatfsType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd)) return env.Undefined();
  struct statfs buf;
  if (fstatfs(fd, &buf) < 0) return ThrowSyscall(env, "fstatfs", errno);
  return Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(buf.f_type)));
}

// objPinAt(fd, dirFd, name): BPF_OBJ_PIN of `name` relative to `dirFd` (BPF_F_PATH_FD).
Napi::Value ObjPinAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, dir_fd;
  std::string name;
  if (!GetFd(info, 0, &fd) || !GetFd(info, 1, &dir_fd) || !GetString(info, 2, "name", &name)) {
    return env.Undefined();
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  ObjAttr obj = {Ptr(name.c_str()), static_cast<uint32_t>(fd), kBpfFPathFd, dir_fd};
  memcpy(&attr, &obj, sizeof(obj));
  if (SysBpf(BPF_OBJ_PIN, &attr) < 0) return ThrowErrno(env, BPF_OBJ_PIN, errno);
  return env.Undefined();
}

// objGetAt(dirFd, name, fileFlags) -> fd: BPF_OBJ_GET of `name` relative to `dirFd`.
Napi::Value ObjGetAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dir_fd;
  std::string name;
  uint32_t file_flags;
  if (!GetFd(info, 0, &dir_fd) || !GetString(info, 1, "name", &name) || !GetU32(info, 2, "fileFlags", &file_flags)) {
    return env.Undefined();
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  ObjAttr obj = {Ptr(name.c_str()), 0, file_flags | kBpfFPathFd, dir_fd};
  memcpy(&attr, &obj, sizeof(obj));
  long fd = SysBpf(BPF_OBJ_GET, &attr);
  if (fd < 0) return ThrowErrno(env, BPF_OBJ_GET, errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// A prepared element: its own duplicate of the map fd and the key and value
// buffers, held by reference for its lifetime, so that each lookup, update
// or delete is one syscall with no arguments to convert (the per-element hot
// path). The fd is closed by close() or when the object is collected.
//   new PreparedElem(fd, key|null, value) → { lookup(), update(flags?), delete(), close() }
class PreparedElem : public Napi::ObjectWrap<PreparedElem> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PreparedElem",
                       {InstanceMethod("lookup", &PreparedElem::Lookup), InstanceMethod("update", &PreparedElem::Update),
                        InstanceMethod("delete", &PreparedElem::Delete), InstanceMethod("close", &PreparedElem::Close)});
  }

  explicit PreparedElem(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PreparedElem>(info) {
    int fd;
    Bytes key, value;
    if (!GetFd(info, 0, &fd) || !GetBytes(info, 1, "key", true, &key) || !GetBytes(info, 2, "value", false, &value)) return;
    fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (fd_ < 0) {
      ThrowSyscall(info.Env(), "fcntl(F_DUPFD_CLOEXEC)", errno);
      return;
    }
    if (!info[1].IsNull() && !info[1].IsUndefined()) key_ref_ = Napi::Persistent(info[1].As<Napi::Object>());
    value_ref_ = Napi::Persistent(info[2].As<Napi::Object>());
    key_ = key.data;
    value_ = value.data;
  }

  ~PreparedElem() override {
    if (fd_ >= 0) close(fd_);
  }

 private:
  // One element command on the prepared fd, key and value.
  long Call(int cmd, uint64_t flags, bool with_value) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = static_cast<uint32_t>(fd_);
    attr.key = Ptr(key_);
    if (with_value) attr.value = Ptr(value_);
    attr.flags = flags;
    return SysBpf(cmd, &attr);
  }

  bool Open(Napi::Env env) {
    if (fd_ >= 0) return true;
    ThrowType(env, "prepared element is closed");
    return false;
  }

  // lookup() → true (the value buffer holds the value), or false when the key is absent.
  Napi::Value Lookup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    if (Call(BPF_MAP_LOOKUP_ELEM, 0, true) < 0) {
      if (errno == ENOENT) return Napi::Boolean::New(env, false);
      return ThrowErrno(env, BPF_MAP_LOOKUP_ELEM, errno);
    }
    return Napi::Boolean::New(env, true);
  }

  // update(flags = BPF_ANY) writes the value buffer at the key.
  Napi::Value Update(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    uint64_t flags = BPF_ANY;
    if (info.Length() > 0 && !info[0].IsUndefined() && !GetU64(info, 0, "flags", &flags)) return env.Undefined();
    if (Call(BPF_MAP_UPDATE_ELEM, flags, true) < 0) return ThrowErrno(env, BPF_MAP_UPDATE_ELEM, errno);
    return env.Undefined();
  }

  // delete() → true, or false when the key was absent.
  Napi::Value Delete(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    if (Call(BPF_MAP_DELETE_ELEM, 0, false) < 0) {
      if (errno == ENOENT) return Napi::Boolean::New(env, false);
      return ThrowErrno(env, BPF_MAP_DELETE_ELEM, errno);
    }
    return Napi::Boolean::New(env, true);
  }

  // close() releases the fd and the buffers; a second call does nothing.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    key_ref_.Reset();
    value_ref_.Reset();
    return info.Env().Undefined();
  }

  int fd_ = -1;
  uint8_t* key_ = nullptr;
  uint8_t* value_ = nullptr;
  Napi::ObjectReference key_ref_;
  Napi::ObjectReference value_ref_;
};

// btfLoad(data, logBuf|null, logLevel) -> fd. BPF_BTF_LOAD of the raw BTF
// blob; the kernel writes its log (NUL-terminated) into logBuf when given.
Napi::Value BtfLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes data, log;
  uint32_t log_level;
  if (!GetBytes(info, 0, "data", false, &data) || !GetBytes(info, 1, "logBuf", true, &log) ||
      !GetU32(info, 2, "logLevel", &log_level)) {
    return env.Undefined();
  }
  if (data.length > UINT32_MAX || log.length > UINT32_MAX) return ThrowType(env, "buffers must be below 4 GiB");
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.btf = Ptr(data.data);
  attr.btf_size = static_cast<uint32_t>(data.length);
  attr.btf_log_buf = Ptr(log.data);
  attr.btf_log_size = static_cast<uint32_t>(log.length);
  attr.btf_log_level = log.data == nullptr ? 0 : log_level;
  long fd = SysBpf(BPF_BTF_LOAD, &attr);
  if (fd < 0) return ThrowErrno(env, BPF_BTF_LOAD, errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// btfGetFdById(id) -> fd of the BTF object with that ID.
Napi::Value BtfGetFdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id;
  if (!GetU32(info, 0, "id", &id)) return env.Undefined();
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.btf_id = id;
  long fd = SysBpf(BPF_BTF_GET_FD_BY_ID, &attr);
  if (fd < 0) return ThrowErrno(env, BPF_BTF_GET_FD_BY_ID, errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// btfInfo(fd, data|null) -> { id, btfSize, kernelBtf, name }: BPF_OBJ_GET_INFO_BY_FD
// of a BTF object, copying min(btfSize, data.length) raw BTF bytes into data.
Napi::Value BtfInfoByFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  Bytes data;
  if (!GetFd(info, 0, &fd) || !GetBytes(info, 1, "data", true, &data)) return env.Undefined();
  if (data.length > UINT32_MAX) return ThrowType(env, "data must be below 4 GiB");
  char name[64];
  memset(name, 0, sizeof(name));
  struct bpf_btf_info btf_info;
  memset(&btf_info, 0, sizeof(btf_info));
  btf_info.btf = Ptr(data.data);
  btf_info.btf_size = static_cast<uint32_t>(data.length);
  btf_info.name = Ptr(name);
  btf_info.name_len = sizeof(name);
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.info.bpf_fd = fd;
  attr.info.info_len = sizeof(btf_info);
  attr.info.info = Ptr(&btf_info);
  if (SysBpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0) return ThrowErrno(env, BPF_OBJ_GET_INFO_BY_FD, errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, btf_info.id));
  out.Set("btfSize", Napi::Number::New(env, btf_info.btf_size));
  out.Set("kernelBtf", Napi::Boolean::New(env, btf_info.kernel_btf != 0));
  out.Set("name", Napi::String::New(env, name, strnlen(name, sizeof(name) - 1)));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("PreparedElem", PreparedElem::Define(env));
  exports.Set("mapCreate", Napi::Function::New(env, MapCreate));
  exports.Set("lookupElem", Napi::Function::New(env, ElemWithValue<BPF_MAP_LOOKUP_ELEM>));
  exports.Set("lookupAndDeleteElem", Napi::Function::New(env, ElemWithValue<BPF_MAP_LOOKUP_AND_DELETE_ELEM>));
  exports.Set("updateElem", Napi::Function::New(env, ElemWithValue<BPF_MAP_UPDATE_ELEM>));
  exports.Set("deleteElem", Napi::Function::New(env, DeleteElem));
  exports.Set("getNextKey", Napi::Function::New(env, GetNextKey));
  exports.Set("lookupBatch", Napi::Function::New(env, BatchSync<BPF_MAP_LOOKUP_BATCH>));
  exports.Set("lookupAndDeleteBatch", Napi::Function::New(env, BatchSync<BPF_MAP_LOOKUP_AND_DELETE_BATCH>));
  exports.Set("updateBatch", Napi::Function::New(env, BatchSync<BPF_MAP_UPDATE_BATCH>));
  exports.Set("deleteBatch", Napi::Function::New(env, BatchSync<BPF_MAP_DELETE_BATCH>));
  exports.Set("lookupBatchAsync", Napi::Function::New(env, BatchAsync<BPF_MAP_LOOKUP_BATCH>));
  exports.Set("updateBatchAsync", Napi::Function::New(env, BatchAsync<BPF_MAP_UPDATE_BATCH>));
  exports.Set("freeze", Napi::Function::New(env, MapFreeze));
  exports.Set("objPin", Napi::Function::New(env, ObjPin));
  exports.Set("objGet", Napi::Function::New(env, ObjGet));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfoByFd));
  exports.Set("mapGetNextId", Napi::Function::New(env, MapGetNextId));
  exports.Set("mapGetFdById", Napi::Function::New(env, MapGetFdById));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("renameat2", Napi::Function::New(env, Renameat2));
  exports.Set("openDirAt", Napi::Function::New(env, OpenDirAt));
  exports.Set("mkdirAt", Napi::Function::New(env, MkdirAt));
  exports.Set("unlinkAt", Napi::Function::New(env, UnlinkAt));
  exports.Set("renameAt2", Napi::Function::New(env, RenameAt2));
  exports.Set("fstatfsType", Napi::Function::New(env, FstatfsType));
  exports.Set("objPinAt", Napi::Function::New(env, ObjPinAt));
  exports.Set("objGetAt", Napi::Function::New(env, ObjGetAt));
  exports.Set("btfLoad", Napi::Function::New(env, BtfLoad));
  exports.Set("btfGetFdById", Napi::Function::New(env, BtfGetFdById));
  exports.Set("btfInfo", Napi::Function::New(env, BtfInfoByFd));
  return exports;
}

}  // namespace

NODE_API_MODULE(bpf, Init)
