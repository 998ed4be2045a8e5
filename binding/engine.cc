// engine.cc: the Node-API glue over beuss_engine (native/include/beuss.h).
//
// It converts arguments and buffers and nothing else: every argument check
// with a readable message lives in src/native.ts, which is the only caller.
// Here a wrong type only raises a terse TypeError, so that a misuse can never
// hand C a bad pointer.
//
// JS API (class Engine):
//   new Engine(config, now)       config: {maxMessageSize, oversize,
//                                 maxQueuedBytes, maxLine, outputHighWater,
//                                 queueIdleMs, maxDeliver, subBuffer,
//                                 subPolicy, nextFire, reuseOutput}, each
//                                 optional (C
//                                 defaults). nextFire(spec, afterMs) ->
//                                 number | string is the schedule
//                                 calculator: the next Unix ms strictly
//                                 after afterMs, -1 for never, or a string
//                                 saying why spec is bad. It is called
//                                 synchronously from inside feed() and
//                                 tick(), so it must not call the engine.
//   open() -> id                  throws an Error with .status on failure
//   close(id, now)       -> output   output: a Buffer holding the output
//   feed(id, chunk, now[, len]) -> output   of every connection concerned, one
//   pause(id)            -> output   after the other, or undefined when
//   resume(id, now)      -> output   there is none; see "Output index"
//   tick(now)            -> output   below
//   setWallClock(now, wallMs)     engine time now is Unix time wallMs
//   nextDeadline() -> number      ms, or -1 when nothing is scheduled
//   stats() -> object             the counters of beuss_stats
//   free()                        releases the engine now (the GC would too)
//   releaseOutput()               drops the reused output Buffer if the last
//                                 output was in it (below)
//   index                         the Uint32Array described below
// Module exports: Engine, strerror(status) -> string, keepFreedMemory()
// and returnFreedMemory() (the C library's allocator, see below), constants (the
// header's defaults, limits, BEUSS_OUT_* flags and status codes, without
// the BEUSS_ prefix).
//
// Output index: each mutating call rewrites the Uint32Array in `this.index`
// (the same object from call to call, replaced only when it must grow or was
// detached by JS, so read the property after the call): index[0] is the number of
// entries n, index[1] is the call's status negated (0 = BEUSS_OK, 4 =
// BEUSS_EOVERFLOW, ...), then n entries of 4 words: conn, offset, length,
// flags (BEUSS_OUT_*), offset and length in bytes into the returned Buffer.
// One Buffer and no JS object per message keeps the hot path at one native
// call and at most one allocation per chunk. The output is drained even when the
// status is an error, so that the output owed to other connections is never
// lost; the caller decides what the status means.
//
// Buffer lifetime: feed() reads the chunk in place for the duration of the
// call only (the engine copies any incomplete tail it keeps); no pointer into
// a JS buffer outlives a call. The returned Buffer is a copy of the engine's
// output, owned by JS: the engine's own output memory is released with
// beuss_output_done() before the call returns. With the config's
// `reuseOutput`, outputs up to kOutputReuseMax bytes are copied into one
// Buffer kept from call to call (no allocation, so no garbage, per call):
// the caller must be done with it before its next call, or call
// releaseOutput() to let it go (a socket that could not write it at once
// still refers to it) so that the next call takes a new one.

#include <napi.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "beuss.h"

namespace {

// Words of the index header (count, status) and per entry.
constexpr size_t kIndexHeader = 2;
constexpr size_t kIndexEntry = 4;
// Initial index capacity, in entries: most calls concern one or two
// connections; a PUT that wakes many consumers grows it once.
constexpr size_t kIndexInitialEntries = 64;
// Outputs up to this size go into the reused output Buffer (reuseOutput);
// larger ones, rare and large enough for an allocation not to matter, get
// a Buffer of their own, so the reused one stays small.
constexpr size_t kOutputReuseMax = 512 * 1024;
// The reused output Buffer's first size; it doubles up to kOutputReuseMax.
constexpr size_t kOutputReuseMin = 16 * 1024;

// Returns the uint64 value of a JS number argument (a non-negative integer,
// checked by the TypeScript caller).
uint64_t ToU64(const Napi::Value &v) {
  double d = v.As<Napi::Number>().DoubleValue();
  return d <= 0 ? 0 : static_cast<uint64_t>(d);
}

class Engine : public Napi::ObjectWrap<Engine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod<&Engine::Open>("open"),
                           InstanceMethod<&Engine::Close>("close"),
                           InstanceMethod<&Engine::Feed>("feed"),
                           InstanceMethod<&Engine::Pause>("pause"),
                           InstanceMethod<&Engine::Resume>("resume"),
                           InstanceMethod<&Engine::Tick>("tick"),
                           InstanceMethod<&Engine::NextDeadline>("nextDeadline"),
                           InstanceMethod<&Engine::SetWallClock>("setWallClock"),
                           InstanceMethod<&Engine::Stats>("stats"),
                           InstanceMethod<&Engine::Free>("free"),
                           InstanceMethod<&Engine::ReleaseOutput>("releaseOutput"),
                       });
  }

  explicit Engine(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Engine>(info) {
    Napi::Env env = info.Env();
    beuss_config cfg;
    beuss_config_init(&cfg);
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "Engine(config, now)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object c = info[0].As<Napi::Object>();
    auto num = [&](const char *key, auto *field) {
      Napi::Value v = c.Get(key);
      if (v.IsNumber()) *field = static_cast<std::remove_pointer_t<decltype(field)>>(ToU64(v));
    };
    num("maxMessageSize", &cfg.max_message_size);
    num("maxQueuedBytes", &cfg.max_queued_bytes);
    num("maxLine", &cfg.max_line);
    num("outputHighWater", &cfg.output_high_water);
    num("queueIdleMs", &cfg.queue_idle_ms);
    num("maxDeliver", &cfg.max_deliver);
    num("subBuffer", &cfg.sub_buffer);
    Napi::Value sp = c.Get("subPolicy");
    if (sp.IsNumber()) {
      cfg.sub_policy = ToU64(sp) == BEUSS_SUB_DISCONNECT ? BEUSS_SUB_DISCONNECT : BEUSS_SUB_DROP_OLDEST;
    }
    reuse_output_ = c.Get("reuseOutput").ToBoolean().Value();
    Napi::Value nf = c.Get("nextFire");
    if (nf.IsFunction()) {
      next_fire_ = Napi::Persistent(nf.As<Napi::Function>());
      cfg.next_fire = &Engine::NextFire;
      cfg.next_fire_ctx = this;
    }
    Napi::Value ov = c.Get("oversize");
    if (ov.IsNumber()) {
      cfg.oversize = ToU64(ov) == BEUSS_OVERSIZE_REJECT ? BEUSS_OVERSIZE_REJECT
                                                        : BEUSS_OVERSIZE_TRUNCATE;
    }
    engine_ = beuss_engine_new(&cfg, nullptr, ToU64(info[1]));
    if (engine_ == nullptr) {
      Napi::Error e = Napi::Error::New(env, "beuss_engine_new failed: invalid config or out of memory");
      e.Set("code", Napi::String::New(env, "BEUSS_ENGINE_NEW"));
      e.ThrowAsJavaScriptException();
      return;
    }
    GrowIndex(env, kIndexInitialEntries);
  }

  ~Engine() override { beuss_engine_free(engine_); }

 private:
  // Returns what beuss_next_fire_fn returns, by calling the JS nextFire
  // given in the config. Runs on the JS thread, inside a call from JS.
  static int64_t NextFire(void *ctx, const char *spec, size_t len, int64_t after_ms, char *err,
                          size_t errcap) {
    Engine *self = static_cast<Engine *>(ctx);
    Napi::Env env = self->Env();
    auto fail = [&](const std::string &why) {
      std::snprintf(err, errcap, "%s", why.c_str());
      return static_cast<int64_t>(-2);
    };
    Napi::Value r = self->next_fire_.Call({Napi::String::New(env, spec, len),
                                           Napi::Number::New(env, static_cast<double>(after_ms))});
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      return fail(e.Message());
    }
    if (r.IsString()) return fail(r.As<Napi::String>().Utf8Value());
    if (!r.IsNumber()) return fail("the schedule calculator returned no time");
    double d = r.As<Napi::Number>().DoubleValue();
    if (d < 0) return -1;
    if (d > 9.0e15) return -1;  // past any date JS can represent: never
    return static_cast<int64_t>(d);
  }

  // Returns false (with a pending JS exception) when the engine was freed.
  bool Live(Napi::Env env) {
    if (engine_ != nullptr) return true;
    Napi::Error::New(env, "the engine was freed").ThrowAsJavaScriptException();
    return false;
  }

  // Replaces this.index with a zeroed Uint32Array of `entries` entries.
  void GrowIndex(Napi::Env env, size_t entries) {
    Napi::Uint32Array arr = Napi::Uint32Array::New(env, kIndexHeader + entries * kIndexEntry);
    index_ref_ = Napi::Persistent(arr);
    Value().Set("index", arr);
  }

  // Returns the index's words and sets *entries to its capacity. Read from
  // the array on every call rather than cached: JS could transfer (detach)
  // its ArrayBuffer, which a cached pointer would not survive.
  uint32_t *IndexWords(size_t *entries) {
    Napi::Uint32Array arr = index_ref_.Value();
    size_t words = arr.ElementLength();
    *entries = words < kIndexHeader ? 0 : (words - kIndexHeader) / kIndexEntry;
    return words < kIndexHeader ? nullptr : arr.Data();
  }

  // Returns the output of every connection since the last drain, as
  // described at the top of this file, and records status in the index.
  Napi::Value Drain(Napi::Env env, int status) {
    pending_.clear();
    size_t total = 0;
    beuss_output out;
    while (beuss_output_next(engine_, &out)) {
      pending_.push_back(out);
      total += out.len;
    }
    size_t cap = 0;
    uint32_t *index = IndexWords(&cap);
    if (index == nullptr || pending_.size() > cap) {
      size_t n = cap < kIndexInitialEntries ? kIndexInitialEntries : cap;
      while (n < pending_.size()) n *= 2;
      GrowIndex(env, n);
      index = IndexWords(&cap);
    }
    index[0] = static_cast<uint32_t>(pending_.size());
    index[1] = static_cast<uint32_t>(-status);
    if (pending_.empty()) {
      last_in_reused_ = false;
      beuss_output_done(engine_);
      return env.Undefined();
    }
    // Offsets are uint32 and a Node Buffer holds at most 4 GiB; the engine
    // bounds each connection's output per call (output_high_water), so only
    // thousands of saturated connections at once could pass this.
    if (total > UINT32_MAX) {
      beuss_output_done(engine_);
      Napi::Error::New(env, "engine output over 4 GiB in one call").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> buf = OutputBuffer(env, total);
    if (env.IsExceptionPending()) {
      beuss_output_done(engine_);
      return env.Undefined();
    }
    uint8_t *dst = buf.Data();
    uint32_t *ix = index + kIndexHeader;
    size_t off = 0;
    for (const beuss_output &o : pending_) {
      if (o.len > 0) std::memcpy(dst + off, o.data, o.len);
      ix[0] = o.conn;
      ix[1] = static_cast<uint32_t>(off);
      ix[2] = static_cast<uint32_t>(o.len);
      ix[3] = o.flags;
      ix += kIndexEntry;
      off += o.len;
    }
    beuss_output_done(engine_);
    return buf;
  }

  // Returns a Buffer of at least total bytes for Drain: the reused one when
  // reuseOutput is on and total fits (growing it if needed), else a new one
  // of exactly total bytes.
  Napi::Buffer<uint8_t> OutputBuffer(Napi::Env env, size_t total) {
    last_in_reused_ = reuse_output_ && total <= kOutputReuseMax;
    if (!last_in_reused_) return Napi::Buffer<uint8_t>::New(env, total);
    // Its length is read from the object on every call rather than cached:
    // JS could detach its ArrayBuffer.
    if (!out_ref_.IsEmpty()) {
      Napi::Buffer<uint8_t> kept = out_ref_.Value();
      if (kept.Length() >= total) return kept;
    }
    size_t cap = kOutputReuseMin;
    while (cap < total) cap *= 2;
    Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, cap);
    if (!env.IsExceptionPending()) out_ref_ = Napi::Persistent(buf);
    return buf;
  }

  // Lets the reused output Buffer go when the last output was in it: the
  // next call that has output takes a new one, and the old one lives as
  // long as JS refers to it. An output in a Buffer of its own (or none)
  // leaves the reused one in place, since nothing new refers to it.
  Napi::Value ReleaseOutput(const Napi::CallbackInfo &info) {
    if (last_in_reused_) out_ref_.Reset();
    return info.Env().Undefined();
  }

  Napi::Value Open(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint32_t id = 0;
    int st = beuss_conn_open(engine_, &id);
    if (st != BEUSS_OK) {
      Napi::Error e = Napi::Error::New(env, beuss_strerror(st));
      e.Set("status", Napi::Number::New(env, st));
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, id);
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    int st = beuss_conn_close(engine_, info[0].As<Napi::Number>().Uint32Value(), ToU64(info[1]));
    return Drain(env, st);
  }

  Napi::Value Feed(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    if (!info[1].IsTypedArray()) {
      Napi::TypeError::New(env, "feed(id, Uint8Array, now)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint8Array chunk = info[1].As<Napi::Uint8Array>();
    // An optional length feeds only the chunk's first bytes (a reused read
    // buffer), sparing the caller a subarray object per read.
    size_t len = chunk.ByteLength();
    if (info.Length() > 3 && info[3].IsNumber()) {
      uint64_t n = ToU64(info[3]);
      if (n < len) len = static_cast<size_t>(n);
    }
    int st = beuss_feed(engine_, info[0].As<Napi::Number>().Uint32Value(), chunk.Data(), len,
                        ToU64(info[2]));
    return Drain(env, st);
  }

  Napi::Value Pause(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    int st = beuss_conn_pause(engine_, info[0].As<Napi::Number>().Uint32Value());
    return Drain(env, st);
  }

  Napi::Value Resume(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    int st = beuss_conn_resume(engine_, info[0].As<Napi::Number>().Uint32Value(), ToU64(info[1]));
    return Drain(env, st);
  }

  Napi::Value Tick(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    int st = beuss_tick(engine_, ToU64(info[0]));
    return Drain(env, st);
  }

  Napi::Value NextDeadline(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    return Napi::Number::New(env, static_cast<double>(beuss_next_deadline(engine_)));
  }

  Napi::Value SetWallClock(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    beuss_set_wall_clock(engine_, ToU64(info[0]), ToU64(info[1]));
    return env.Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    beuss_stats s;
    beuss_engine_stats(engine_, &s);
    Napi::Object o = Napi::Object::New(env);
    auto put = [&](const char *k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    put("connections", s.connections);
    put("queues", s.queues);
    put("messages", s.messages);
    put("bytes", s.bytes);
    put("consumers", s.consumers);
    put("waiting", s.waiting);
    put("puts", s.puts);
    put("taken", s.taken);
    put("pushed", s.pushed);
    put("truncated", s.truncated);
    put("rejectedLarge", s.rejected_large);
    put("rejectedFull", s.rejected_full);
    put("protocolErrors", s.protocol_errors);
    put("memory", s.memory);
    put("leased", s.leased);
    put("acked", s.acked);
    put("nacked", s.nacked);
    put("expired", s.expired);
    put("redelivered", s.redelivered);
    put("deadLettered", s.dead_lettered);
    put("channels", s.channels);
    put("subscribers", s.subscribers);
    put("published", s.published);
    put("eventsDelivered", s.events_delivered);
    put("eventsDropped", s.events_dropped);
    put("scheduled", s.scheduled);
    put("scheduledBytes", s.scheduled_bytes);
    put("schedules", s.schedules);
    put("scheduleFired", s.schedule_fired);
    put("queuesRemovedIdle", s.queues_removed_idle);
    return o;
  }

  Napi::Value Free(const Napi::CallbackInfo &info) {
    beuss_engine_free(engine_);
    engine_ = nullptr;
    return info.Env().Undefined();
  }

  beuss_engine *engine_ = nullptr;
  Napi::Reference<Napi::Uint32Array> index_ref_;
  // The reused output Buffer (reuseOutput), empty until the first output.
  Napi::Reference<Napi::Buffer<uint8_t>> out_ref_;
  bool reuse_output_ = false;
  // The last call's output was put in the reused Buffer.
  bool last_in_reused_ = false;
  Napi::FunctionReference next_fire_;
  // Reused across calls so that draining does not allocate per call.
  std::vector<beuss_output> pending_;
};

// Returns the static English text of a beuss_status.
Napi::Value StrError(const Napi::CallbackInfo &info) {
  return Napi::String::New(info.Env(), beuss_strerror(info[0].As<Napi::Number>().Int32Value()));
}

// Freed memory and the C library's allocator. glibc gives back freed memory
// at the top of its heap as soon as it passes 128 KiB (and large blocks at
// once, with munmap), so a queue that fills, drains and fills again pays a
// page fault for every 4 KiB of every message each time; with 1 MiB
// messages that halved input throughput. keepFreedMemory() makes glibc keep
// what is freed (large blocks come from the heap up to 32 MiB, no automatic
// trim), and returnFreedMemory() gives back every free page, for the server
// to call once it is idle: the policy of allocators with decay, such as
// jemalloc's. Both return whether they did anything (false outside glibc).
Napi::Value KeepFreedMemory(const Napi::CallbackInfo &info) {
#if defined(__GLIBC__)
  bool ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1;
  // A threshold over any heap this process can have: trims come from
  // returnFreedMemory() only.
  ok = mallopt(M_TRIM_THRESHOLD, 0x7FFFFFFF) == 1 && ok;
  return Napi::Boolean::New(info.Env(), ok);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Value ReturnFreedMemory(const Napi::CallbackInfo &info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", Engine::Define(env));
  exports.Set("strerror", Napi::Function::New<StrError>(env, "strerror"));
  exports.Set("keepFreedMemory", Napi::Function::New<KeepFreedMemory>(env, "keepFreedMemory"));
  exports.Set("returnFreedMemory", Napi::Function::New<ReturnFreedMemory>(env, "returnFreedMemory"));
  // The engine's constants, taken from the header at build time so that
  // TypeScript never copies them by hand.
  Napi::Object k = Napi::Object::New(env);
  auto put = [&](const char *name, double v) { k.Set(name, Napi::Number::New(env, v)); };
  put("PROTOCOL_VERSION", BEUSS_PROTOCOL_VERSION);
  put("DEFAULT_MAX_MESSAGE_SIZE", BEUSS_DEFAULT_MAX_MESSAGE_SIZE);
  put("DEFAULT_MAX_LINE", BEUSS_DEFAULT_MAX_LINE);
  put("MIN_MAX_LINE", BEUSS_MIN_MAX_LINE);
  put("MAX_MAX_LINE", BEUSS_MAX_MAX_LINE);
  put("MAX_QUEUE_NAME", BEUSS_MAX_QUEUE_NAME);
  put("DEFAULT_OUTPUT_HIGH_WATER", BEUSS_DEFAULT_OUTPUT_HIGH_WATER);
  put("MAX_MAX_MESSAGE_SIZE", BEUSS_MAX_MAX_MESSAGE_SIZE);
  put("DEFAULT_MAX_DELIVER", BEUSS_DEFAULT_MAX_DELIVER);
  put("MAX_PENDING_INPUT", BEUSS_MAX_PENDING_INPUT);
  put("DEFAULT_MAX_QUEUED_BYTES", static_cast<double>(BEUSS_DEFAULT_MAX_QUEUED_BYTES));
  put("DEFAULT_SUB_BUFFER", BEUSS_DEFAULT_SUB_BUFFER);
  put("MAX_SCHEDULES", BEUSS_MAX_SCHEDULES);
  put("MAX_SCHEDULE_SPEC", BEUSS_MAX_SCHEDULE_SPEC);
  put("SUB_DROP_OLDEST", BEUSS_SUB_DROP_OLDEST);
  put("SUB_DISCONNECT", BEUSS_SUB_DISCONNECT);
  put("OVERSIZE_TRUNCATE", BEUSS_OVERSIZE_TRUNCATE);
  put("OVERSIZE_REJECT", BEUSS_OVERSIZE_REJECT);
  put("OUT_CLOSE", BEUSS_OUT_CLOSE);
  put("OUT_FULL", BEUSS_OUT_FULL);
  put("OUT_WAITING", BEUSS_OUT_WAITING);
  put("OK", BEUSS_OK);
  put("ENOMEM", BEUSS_ENOMEM);
  put("EINVAL", BEUSS_EINVAL);
  put("ENOCONN", BEUSS_ENOCONN);
  put("EOVERFLOW", BEUSS_EOVERFLOW);
  exports.Set("constants", k);
  return exports;
}

}  // namespace

NODE_API_MODULE(beuss_native, Init)
