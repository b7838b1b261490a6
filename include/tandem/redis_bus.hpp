// tandem/redis_bus.hpp -- the event bus across processes and machines, over Redis pub/sub.
//
// What it is for: Phoenix.PubSub with its Redis adapter, in C++. A redis_bus is a
// tandem::event_bus<Message> (same subscribe / publish / publish_from / topic_count /
// subscriber_count) whose publishes also reach the subscribers of every other redis_bus -- in
// this process, in another process, on another machine -- that uses the same Redis server and
// the same channel_prefix. Redis is the broker; tandem writes no network protocol of its own
// (hiredis speaks RESP).
//
// When not to use it: when every subscriber lives in one process (event_bus is cheaper and
// loses nothing), or when a message must not be lost (Redis pub/sub is at-most-once: use a
// queue or a stream).
//
// This header is NOT part of <tandem/tandem.hpp>: it needs hiredis. Include it explicitly and
// link tandem::redis (find_package(tandem CONFIG COMPONENTS redis)). POSIX only (poll, pipe).
//
//   tandem::redis_bus<std::string> bus({.host = "127.0.0.1", .port = 6379});
//   auto lobby = bus.subscribe("room:lobby");
//   bus.publish("room:lobby", "hello");     // local subscribers now, other nodes via Redis
//   std::string text = lobby.receive();    // "hello" (delivered locally, never twice)
//
// The algorithm, step by step:
//  1. The local side is an event_bus<Message> owned by the redis_bus: local subscribers are its
//     subscriptions, and every delivery to them -- from this node or from Redis -- is its
//     publish.
//  2. One Redis channel per bus, `<channel_prefix>events`, carries every topic: the topic is
//     in the envelope (as Phoenix.PubSub.Redis does with one channel per PubSub server). So
//     local subscribe/unsubscribe send nothing to Redis, 10,000 topics cost nothing, and a
//     remote message is delivered to local subscribers that subscribed before it arrived
//     without a SUBSCRIBE round trip that could lose it. The price: every node receives every
//     message of the bus and drops those with no local subscriber (event_bus's absent-topic
//     filter makes that a hash and a load).
//  3. publish(topic, message): (a) encode the envelope (version, node name, sequence slot,
//     topic, payload via Codec; sizes checked: std::length_error before anything happens),
//     (b) deliver to local subscribers (event_bus::publish: at once, as event_bus), (c) hand
//     the envelope to the send queue (noexcept: a move into a preallocated ring). Commit point:
//     (b); (c) cannot fail. Nothing in publish waits for Redis.
//  4. The send queue is a bounded ring (send_queue_capacity envelopes, allocated up front). A
//     full queue evicts its oldest envelope (counted in `dropped`). The per-node sequence
//     number is written into the envelope under the queue lock, so sequence order is queue
//     order is wire order.
//  5. The sender thread owns the publisher connection: it takes a batch from the queue,
//     pipelines one PUBLISH per envelope, then reads the replies. Replies received: `sent`.
//     A broken connection loses the unconfirmed rest of the batch (counted in `dropped`: they
//     may or may not have reached Redis), then the thread reconnects with backoff while the
//     queue keeps filling (and evicting).
//  6. The receiver thread owns the subscriber connection: connect, AUTH, SUBSCRIBE, then
//     poll() on the socket and on a wake-up pipe (the destructor writes to it), parse replies
//     with hiredis, and for each message: parse the envelope (every length checked against
//     the received size and the configured bounds), ignore this node's own envelopes (by node
//     name: local subscribers already had them), count sequence gaps of other nodes in
//     `missed`, decode the payload with Codec and publish it to the local event_bus. Anything
//     malformed, of another version, oversized or refused by Codec is counted in `rejected`
//     and dropped.
//  7. Either thread reconnects after a failure with exponential backoff between
//     reconnect_min and reconnect_max (doubling). A connection that ends within reconnect_max
//     of its handshake is a failure too; one that stayed up longer resets the backoff and is
//     re-established at once (so a server that accepts and then drops every connection is
//     retried about once per reconnect_max, not in a busy loop). Each connection
//     re-established after it had been up counts in `reconnects`. The destructor stops both
//     threads (a flag, a condition variable for the waits, the pipe for poll) and joins them;
//     envelopes still queued are counted in `dropped` (call flush() first to send them).
//
// Guarantees:
//  - Local delivery is exactly event_bus's (order, no duplicates, at once), whatever Redis
//    does. Local publish and receive never block on Redis and never fail because of it.
//  - Across nodes: at-most-once. Each publish is sent once; every other node of the bus that
//    is subscribed to the channel when Redis processes the PUBLISH delivers it once to its own
//    local subscribers; a node never delivers its own message twice. Order per publishing
//    thread (per node, in fact) and topic is kept between two nodes (one queue, one
//    connection, one channel, and Redis keeps per-connection order).
//  - Losses are counted, never silent: the sender counts what it evicted or lost with a
//    connection (`dropped`); a receiver counts the gaps in other nodes' sequences (`missed`:
//    messages of a node it has heard from that it never got, whatever the cause). What is
//    published while no Redis is reachable waits in the send queue (bounded, oldest evicted)
//    and goes out after the reconnect; what other nodes publish while this node's subscriber
//    connection is down is lost (Redis does not keep it) and shows up in `missed` at this
//    node's next message from them.
//  - Subscriptions with overflow_policy::block and a bounded capacity are refused
//    (std::invalid_argument): remote messages arrive on one receiver thread, and a full
//    blocking mailbox would stall every topic of the node (and make Redis drop the connection
//    at its pubsub output-buffer limit) and the destructor with it.
//  - Exception safety: publish is strong up to the commit point (a Codec exception or
//    std::length_error changes nothing), then as event_bus::publish (basic: a throw from the
//    local delivery propagates and the envelope is not sent). The threads never let an
//    exception escape: a failure in them is a failed connection (backoff, retry) or a
//    rejected message.
//  - Nothing from the network is trusted: envelope lengths are checked against the received
//    size and against max_topic_bytes / max_message_bytes before use; the per-node sequence
//    table holds at most max_tracked_nodes entries (then it starts over); a sequence number is
//    compared without arithmetic that can wrap (a smaller one is a restart, counted nothing),
//    and `missed` saturates at 2^64 - 1.
//  - Blocking: the destructor stops the threads and waits for them: it shuts both sockets
//    down, so a read or write in progress returns at once whatever the server does; only a
//    connect in progress is waited for: the TCP connect at most io_timeout, but a host given
//    by name is resolved first (getaddrinfo, which hiredis cannot interrupt or bound: with an
//    unreachable DNS server, the resolver's own timeout, tried for IPv4 and then IPv6). Give
//    `host` as an address where shutdown must be bounded. flush() and wait_connected() take
//    a timeout. io_timeout bounds each read and write: a silent server is noticed after it, a
//    peer that trickles bytes (not Redis at all) only by stop().
//  - Destroying the bus on one of its own threads (the last owner dropped in Codec::decode or
//    a Message's constructor or destructor, which run on the receiver thread) is reported
//    through the assertion handler and ends the process (std::abort), in every build: the
//    destructor must join that thread, and the thread would return into a destroyed bus, so it
//    can neither wait for itself nor be detached (rule 12). Destroy it from another thread.
//  - Signals: the bus's two threads block SIGPIPE (a write to a closed socket is then an
//    error, not the end of the process); no other thread's mask or disposition is touched.
//  - fork(): a child process gets a copy of the bus without its threads, sharing the
//    parent's sockets and wake-up pipe. Only the process that built the bus may use it. In a
//    child, the destructor (a static bus at exit(), a scope left) acts on nothing the parent
//    shares: it neither wakes nor shuts down the connections nor joins threads that are not
//    there (before 2026-12-02 it did both, and the parent's bus reconnected in a busy loop
//    for ever; rule 46). The receiver also takes a wake-up for a stop only when stop() has
//    been called, and empties the pipe otherwise. The child's copy of the local bus is left
//    allocated (its destructor would take locks the parent's threads may have held at the
//    fork). What the child's own code holds is its own: POSIX allows a child of a
//    multi-threaded process only async-signal-safe calls until it execs, and a subscription
//    whose mailbox a parent thread was waiting on at the fork (receive_for) cannot be
//    destroyed in the child (glibc's pthread_cond_destroy waits for that waiter for ever), as
//    for any std::condition_variable: exec or _exit, or leak it.
//
// Costs: two threads and two Redis connections per bus; the send ring (send_queue_capacity
// std::string slots, 32 bytes each); per publish one envelope (a string of 20 + node name +
// topic + payload bytes) and the local publish; per received message the hiredis reply, one
// decode and the local publish. The wake-up pipe costs two file descriptors.
//
// Memory ordering: the counters are independent relaxed atomics: each is a monotonic tally
// read for reporting, no other data is published through them. The connection flags are
// written under the state mutex (which wait_connected() sleeps on) and read relaxed by
// connected(), a snapshot whose value no other memory access depends on. Everything else the
// threads share is guarded by the queue mutex or the state mutex.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>
#include <version>
#if __has_include(<source_location>)  // not in libc++ 14 (clang 14 takes libstdc++ 12's, empty)
#include <source_location>
#endif

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#if defined(__has_include)
#if !__has_include(<hiredis/hiredis.h>)
// One line that says what is missing, instead of the compiler's "hiredis/hiredis.h: No such file
// or directory" (a new user's trial, 2026-12-05: the vcpkg port installs this header also
// without its `redis` feature).
#error \
    "tandem/redis_bus.hpp needs hiredis: install it (Debian libhiredis-dev, vcpkg port feature tandem[redis]) and link the tandem::redis target (find_package(tandem COMPONENTS redis))"
#endif
#endif
#include <hiredis/hiredis.h>

#include "detail/arguments.hpp"
#include "detail/type_contents.hpp"
#include "event_bus.hpp"
#include "string_hash.hpp"
#include "sync/assert.hpp"
#include "sync/backoff.hpp"
#include "sync/sync_point.hpp"

namespace tandem {

// Thrown by redis_bus::publish when the topic or the encoded message is larger than the
// configured bound (max_topic_bytes, max_message_bytes). Nothing was delivered or sent.
class TANDEM_PROCESS_WIDE message_too_large : public std::length_error {
 public:
  using std::length_error::length_error;
};

// A codec turns a Message into bytes and back. encode either returns the bytes
// (`encode(const Message&) -> std::string`) or appends them (`encode(const Message&,
// std::string& out)`, preferred: no extra copy into the envelope); decode takes exactly the
// bytes encode produced and returns the Message, throwing (anything) on malformed input.
// Codecs are default-constructed and used from several threads at once: keep them stateless.
template <class Codec, class Message>
concept message_codec = std::default_initializable<Codec> &&
    requires(const Codec& codec, const Message& message, std::string& out, std::string_view bytes) {
  requires(
      requires {
        { codec.encode(message) } -> std::convertible_to<std::string>;
      } ||
      requires { codec.encode(message, out); });
  { codec.decode(bytes) } -> std::same_as<Message>;
};

namespace detail {
// A scoped enum (C++23's std::is_scoped_enum): its underlying type is fixed, so every value of
// that type is a valid value of the enum.
template <class T>
inline constexpr bool is_scoped_enum_v = false;
template <class T>
requires std::is_enum_v<T>
inline constexpr bool is_scoped_enum_v<T> = !std::is_convertible_v<T, std::underlying_type_t<T>>;

// Every byte of T is part of its value (no padding: the sender's leftover memory is never
// sent) and, as far as the type system can tell, any bytes from the network make a valid T.
// float and double have no unique representation (two zeros, many NaNs) but neither padding
// nor invalid patterns; bool has invalid patterns (a bool holding 2 is undefined behaviour), so
// has a scoped enum over bool (found by review of the first version, 2026-12-02) and an
// unscoped enum without a fixed underlying type (its values span only its enumerators' bits;
// C++20 cannot tell one with a fixed type apart, so every unscoped enum is refused); a
// std::array is what its elements are (their innermost element for a C-array element), and
// one of none is a byte of padding.
template <class T>
struct wire_safe_bytes
    : std::bool_constant<!std::is_same_v<T, bool> && !std::is_enum_v<T> &&
                         (std::has_unique_object_representations_v<T> || std::is_same_v<T, float> ||
                          std::is_same_v<T, double>)> {};
template <class T>
requires std::is_enum_v<T>
struct wire_safe_bytes<T>
    : std::bool_constant<is_scoped_enum_v<T> &&
                         wire_safe_bytes<std::remove_cv_t<std::underlying_type_t<T>>>::value> {
};
template <class T, std::size_t N>
struct wire_safe_bytes<std::array<T, N>>
    : std::bool_constant<N != 0 &&
                         wire_safe_bytes<std::remove_cv_t<std::remove_all_extents_t<T>>>::value> {};
template <class T>
inline constexpr bool wire_safe_bytes_v = wire_safe_bytes<T>::value;

// An iterator whose dereference yields a reference: a pointer into the sender's memory in a
// wrapper (a container's iterator, std::reverse_iterator, std::counted_iterator, ...). One that
// yields a value (a sequence number with ++ and *, iota_view's iterator) holds no address.
template <class T>
concept address_iterator =
    std::input_or_output_iterator<T> && std::is_reference_v<std::iter_reference_t<T>>;

// A type whose bytes are an address in the sender's memory, as far as the standard library's
// types go: a pointer or member pointer, std::nullptr_t, a view, std::reference_wrapper or
// std::initializer_list (is_view_v), an iterator that yields references (address_iterator),
// std::type_index (a pointer to the sender's std::type_info), std::coroutine_handle,
// std::source_location and std::atomic_ref (a view: is_view_v). Each of these is trivially
// copyable with no padding, so wire_safe_bytes alone let them through (found by review, 2026-12-04:
// redis_bus<std::reference_wrapper<const int>> compiled, and a receiver got a reference at an
// address any client could choose; docs/reliability.md rule 64). std::ranges' views and other
// libraries' string views are refused as views (detail::is_view). Not seen: std::move_sentinel,
// std::pmr::polymorphic_allocator.
template <class T>
struct is_address
    : std::bool_constant<std::is_pointer_v<T> || std::is_member_pointer_v<T> ||
                         std::is_null_pointer_v<T> || is_view<T>::value || address_iterator<T>> {};
template <>
struct is_address<std::type_index> : std::true_type {};
template <class Promise>
struct is_address<std::coroutine_handle<Promise>> : std::true_type {};
#if defined(__cpp_lib_source_location)  // clang 14 with libstdc++ 12 has no source_location
template <>
struct is_address<std::source_location> : std::true_type {};
#endif
// An address, or a std::array, C array, pair, tuple, optional or variant holding one at any
// depth (detail::holds_v, detail/type_contents.hpp: redis_bus<std::array<std::string_view, 1>>
// compiled until 2026-12-04). A struct of the user's own holding a pointer is not seen.
template <class T>
inline constexpr bool holds_address_v = holds_v<is_address, T>;
}  // namespace detail

// The messages default_codec knows: std::string (its bytes) and trivially copyable types
// that hold no address (pointers, views, references, iterators, std::type_index and the like,
// also inside a std::array, pair, tuple or optional: detail::holds_address) and whose bytes are
// all value
// (their object representation: same ABI and byte order on every node):
//  - no padding (std::has_unique_object_representations): a struct with padding would send
//    whatever the sender's memory held there (found by review, 2026-12-02: a `{int; double}`
//    sent 4 uninitialised bytes to every subscriber of the channel). So a struct holding a
//    float or double is refused too (the standard cannot say whether it has padding); float
//    and double alone are accepted;
//  - not bool and not an unscoped enum, whose invalid byte patterns any client able to
//    PUBLISH on the channel could send (a bool holding 2: undefined behaviour).
// Two things cannot be told apart at compile time, so never send them with this codec: a
// struct holding a pointer (its bytes are an address in the sender's memory), and a struct
// holding a bool or an unscoped enum (a foreign client can send an invalid one). Write a codec
// for those. (Until 2026-12-01 redis_bus<std::string_view> compiled, and its receivers read an
// address of the sender's heap in their own memory.)
template <class Message>
concept default_encodable = std::same_as<Message, std::string> ||
    (std::is_trivially_copyable_v<Message> && !std::is_array_v<Message> &&
     std::is_object_v<Message> && !detail::holds_address_v<Message> &&
     detail::wire_safe_bytes_v<std::remove_cv_t<Message>>);

// Primary template: deliberately empty. A Message that is not default_encodable gets no
// encode/decode, so redis_bus<Message> fails its `message_codec` requirement at the point of
// use: write a codec and pass it as redis_bus's second argument.
template <class Message>
struct default_codec {};

template <>
struct default_codec<std::string> {
  static void encode(const std::string& message, std::string& out) { out.append(message); }
  static std::string decode(std::string_view bytes) { return std::string(bytes); }
};

template <class Message>
requires(default_encodable<Message> &&
         !std::same_as<Message, std::string>) struct default_codec<Message> {
  static void encode(const Message& message, std::string& out) {
    // unsigned char: a copy of an object's bytes as the standard allows (no padding here, see
    // default_encodable, so every byte has a determinate value).
    const auto bytes = std::bit_cast<std::array<unsigned char, sizeof(Message)>>(message);
    out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  static Message decode(std::string_view bytes) {
    if (bytes.size() != sizeof(Message)) {
      throw std::invalid_argument("tandem::default_codec: expected " +
                                  std::to_string(sizeof(Message)) + " bytes, got " +
                                  std::to_string(bytes.size()));
    }
    std::array<unsigned char, sizeof(Message)> raw{};
    std::memcpy(raw.data(), bytes.data(), raw.size());
    return std::bit_cast<Message>(raw);
  }
};

struct redis_options {
  std::string host = "127.0.0.1";
  int port = 6379;
  // AUTH: empty password sends none; an empty username with a password is `AUTH password`.
  std::string username;
  std::string password;
  // Buses sharing one Redis and this prefix are one bus; another prefix is another bus. The
  // channel is `<channel_prefix>events`.
  std::string channel_prefix = "tandem:";
  // Empty: generated, unique ("node-<64 random bits>-<pid>"). 1 to 255 bytes. Two nodes with
  // the same name ignore each other's messages: keep names unique.
  std::string node_name;
  // Reconnect backoff: the first retry after reconnect_min, doubling up to reconnect_max. A
  // connection that stays up for reconnect_max resets it; one that ends sooner counts as a
  // failed connect (the next retry waits the doubled backoff).
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{5000};
  // Connect, write and reply timeout of a connection (a dead server is noticed after it).
  std::chrono::milliseconds io_timeout{2000};
  // Envelopes waiting to be sent (while Redis is slow or away); the oldest is evicted beyond
  // it. 10,000 covers a few hundred milliseconds of a busy node for 320 KiB of slots.
  std::size_t send_queue_capacity = 10000;
  // Largest encoded payload (publish throws message_too_large beyond it; receivers reject
  // larger ones). At most 4 GiB - 1 (the envelope's 32-bit length).
  std::size_t max_message_bytes = std::size_t{1} << 20;
  // Longest topic name, same rules.
  std::size_t max_topic_bytes = 1024;
  // Other nodes whose sequence numbers are tracked for `missed` (then the table starts over).
  std::size_t max_tracked_nodes = 1024;
  // The local event_bus's options (mailbox defaults, shards, filter). A bounded default
  // capacity must not use overflow_policy::block (see the header comment).
  event_bus_options local = {};
};

// Counters of one redis_bus since its construction (see the header comment for when each
// moves).
struct redis_bus_stats {
  std::uint64_t sent = 0;        // envelopes Redis acknowledged
  std::uint64_t received = 0;    // messages of other nodes delivered to the local bus
  std::uint64_t dropped = 0;     // published here, never sent: evicted, lost in flight, or
                                 // still queued at destruction
  std::uint64_t rejected = 0;    // malformed, unknown version, oversized, refused by Codec, or
                                 // its local delivery threw (it may have reached some of the
                                 // local subscribers, not all)
  std::uint64_t reconnects = 0;  // connections re-established after being lost
  std::uint64_t missed = 0;      // gaps in other nodes' sequence numbers (saturates)
};

namespace detail::redis {

// The envelope, version 1 (all integers little-endian):
//   offset 0  'T' 'B'           magic
//          2  0x01              version
//          3  n (1..255)        length of the node name
//          4  node name         n bytes
//        4+n  sequence          u64, per node, from 0
//       12+n  t                 u32, topic length
//       16+n  topic             t bytes
//     16+n+t  p                 u32, payload length
//     20+n+t  payload           p bytes (Codec's), and the envelope ends exactly there
inline constexpr unsigned char envelope_version = 1;
inline constexpr std::size_t sequence_offset = 4;  // + node name length

struct envelope_view {
  std::string_view node;
  std::uint64_t sequence = 0;
  std::string_view topic;
  std::string_view payload;
};

inline void append_le(std::string& out, std::uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>(static_cast<unsigned char>(value >> (8 * i))));
  }
}

inline void write_le(char* at, std::uint64_t value, std::size_t bytes) noexcept {
  for (std::size_t i = 0; i < bytes; ++i) {
    at[i] = static_cast<char>(static_cast<unsigned char>(value >> (8 * i)));
  }
}

inline std::uint64_t read_le(const char* at, std::size_t bytes) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(at[i])) << (8 * i);
  }
  return value;
}

// Parses untrusted bytes: every length is checked against what is left and against the bound
// before it is used. std::nullopt for anything but a well-formed version-1 envelope.
inline std::optional<envelope_view> parse_envelope(std::string_view bytes, std::size_t max_topic,
                                                   std::size_t max_payload) noexcept {
  std::size_t at = 0;
  auto left = [&] { return bytes.size() - at; };
  if (bytes.size() < 4 || bytes[0] != 'T' || bytes[1] != 'B') return std::nullopt;
  if (static_cast<unsigned char>(bytes[2]) != envelope_version) return std::nullopt;
  const std::size_t node_length = static_cast<unsigned char>(bytes[3]);
  at = 4;
  if (node_length == 0 || left() < node_length + 8 + 4) return std::nullopt;
  envelope_view view;
  view.node = bytes.substr(at, node_length);
  at += node_length;
  view.sequence = read_le(bytes.data() + at, 8);
  at += 8;
  const std::uint64_t topic_length = read_le(bytes.data() + at, 4);
  at += 4;
  if (topic_length > max_topic || topic_length > left()) return std::nullopt;
  view.topic = bytes.substr(at, static_cast<std::size_t>(topic_length));
  at += static_cast<std::size_t>(topic_length);
  if (left() < 4) return std::nullopt;
  const std::uint64_t payload_length = read_le(bytes.data() + at, 4);
  at += 4;
  if (payload_length > max_payload || payload_length != left()) return std::nullopt;
  view.payload = bytes.substr(at);
  return view;
}

// The bounded send ring (step 4). One lock; the sender thread is its only consumer.
class send_queue {
 public:
  explicit send_queue(std::size_t capacity) : slots_(capacity) {}

  // Stamps the next sequence number into `envelope` and queues it, evicting the oldest when
  // full. noexcept: a string move-assignment into a preallocated slot. Returns whether an
  // envelope was evicted.
  bool push(std::string&& envelope, std::size_t sequence_at) noexcept {
    std::string evicted;  // freed after the lock
    bool dropped = false;
    {
      std::lock_guard<std::mutex> guard(lock_);
      write_le(envelope.data() + sequence_at, next_sequence_++, 8);
      if (size_ == slots_.size()) {
        evicted = std::move(slots_[head_]);
        head_ = next(head_);
        --size_;
        dropped = true;
      }
      slots_[(head_ + size_) % slots_.size()] = std::move(envelope);
      ++size_;
    }
    ready_.notify_one();
    return dropped;
  }

  // Moves up to max_count envelopes (and about max_bytes) into `batch`; waits up to
  // `idle` for one (batch stays empty then). Returns false once stopped. They count as in
  // flight until done().
  bool take(std::vector<std::string>& batch, std::size_t max_count, std::size_t max_bytes,
            std::chrono::milliseconds idle) {
    std::unique_lock<std::mutex> guard(lock_);
    ready_.wait_for(guard, idle, [&] { return size_ != 0 || stopped_; });
    if (stopped_) return false;
    // The one step that may throw (std::bad_alloc), before anything leaves the ring: growing
    // `batch` while envelopes were moving out left the ones already moved uncounted in
    // in_flight_, so their done() wrapped it and flush() never saw the queue drained again
    // (docs/reliability.md rule 3).
    batch.reserve(max_count);
    std::size_t bytes = 0;
    while (size_ != 0 && batch.size() < max_count && bytes < max_bytes) {
      bytes += slots_[head_].size();
      batch.push_back(std::move(slots_[head_]));
      head_ = next(head_);
      --size_;
    }
    in_flight_ += batch.size();
    return true;
  }

  void done(std::size_t count) noexcept {
    bool drained = false;
    {
      std::lock_guard<std::mutex> guard(lock_);
      in_flight_ -= count;
      drained = size_ == 0 && in_flight_ == 0;
    }
    if (drained) drained_.notify_all();
  }

  // Stops take(); returns the envelopes left (they will never be sent) and empties the ring.
  std::size_t stop() noexcept {
    std::size_t left = 0;
    {
      std::lock_guard<std::mutex> guard(lock_);
      stopped_ = true;
      left = size_;
      for (; size_ != 0; --size_, head_ = next(head_)) slots_[head_].clear();
    }
    ready_.notify_all();
    drained_.notify_all();
    return left;
  }

  // In a child made by fork() (redis_bus::forget_in_forked_child): the condition variables'
  // waiters are the parent's threads, which the child does not have, and glibc's
  // pthread_cond_destroy waits for every recorded waiter to leave (a hang for ever). Empty
  // ones are built in their place, without destroying the copies.
  void forget_waiters_in_forked_child() noexcept {
    std::construct_at(&ready_);
    std::construct_at(&drained_);
  }

  bool wait_drained(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> guard(lock_);
    return drained_.wait_until(guard, deadline,
                               [&] { return (size_ == 0 && in_flight_ == 0) || stopped_; }) &&
           size_ == 0 && in_flight_ == 0;
  }

 private:
  std::size_t next(std::size_t index) const noexcept {
    return index + 1 == slots_.size() ? 0 : index + 1;
  }

  std::mutex lock_;
  std::condition_variable ready_;    // the sender waits for an envelope
  std::condition_variable drained_;  // flush() waits for nothing queued or in flight
  std::vector<std::string> slots_;   // guarded by lock_, as are the fields below
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t in_flight_ = 0;
  std::uint64_t next_sequence_ = 0;
  bool stopped_ = false;
};

struct context_deleter {
  void operator()(redisContext* context) const noexcept { redisFree(context); }
};
using context_ptr = std::unique_ptr<redisContext, context_deleter>;

struct reply_deleter {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

inline std::string_view reply_text(const redisReply& reply) noexcept {
  return reply.str == nullptr ? std::string_view() : std::string_view(reply.str, reply.len);
}

// The receiver's poll() wake-up: a non-blocking pipe; the destructor writes one byte.
class wake_pipe {
 public:
  wake_pipe() {
    if (::pipe(fds_.data()) != 0) {
      throw std::system_error(errno, std::generic_category(), "tandem::redis_bus: pipe");
    }
    for (const int fd : fds_) {
      const int flags = ::fcntl(fd, F_GETFL);
      if (flags == -1 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
          ::fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
        const int error = errno;
        close_both();
        throw std::system_error(error, std::generic_category(), "tandem::redis_bus: fcntl");
      }
    }
  }
  wake_pipe(const wake_pipe&) = delete;
  wake_pipe& operator=(const wake_pipe&) = delete;
  ~wake_pipe() { close_both(); }

  void wake() noexcept {
    const char byte = 1;
    [[maybe_unused]] const ::ssize_t written = ::write(fds_[1], &byte, 1);  // full: awake already
  }
  [[nodiscard]] int read_end() const noexcept { return fds_[0]; }
  // Empties the pipe (non-blocking reads until none is left).
  void drain() noexcept {
    std::array<char, 64> bytes{};
    while (::read(fds_[0], bytes.data(), bytes.size()) > 0) {
    }
  }

 private:
  void close_both() noexcept {
    for (int& fd : fds_) {
      if (fd != -1) ::close(fd);
      fd = -1;
    }
  }
  std::array<int, 2> fds_{-1, -1};
};

// Saturates at max_timeout_ms: hiredis refuses a timeout whose milliseconds overflow a
// `long` ("Invalid timeout specified"), so milliseconds::max() (which redis_options, like
// every timeout in tandem, takes for "until it happens") made every connect fail for ever.
inline constexpr std::int64_t max_timeout_ms = std::int64_t{1000} * 60 * 60 * 24 * 365 * 100;
inline ::timeval to_timeval(std::chrono::milliseconds duration) noexcept {
  // ::time_t and ::suseconds_t are both `long` on Linux: brace-init checks for narrowing.
  const auto count = std::min<std::chrono::milliseconds::rep>(duration.count(), max_timeout_ms);
  return ::timeval{count / 1000, (count % 1000) * 1000};
}

inline std::string generated_node_name() {
  std::random_device device;
  const std::uint64_t bits =
      (static_cast<std::uint64_t>(device()) << 32) ^ static_cast<std::uint64_t>(device());
  static constexpr std::string_view digits = "0123456789abcdef";
  std::string name = "node-";
  for (int shift = 60; shift >= 0; shift -= 4) {
    name.push_back(digits[(bits >> shift) & 15U]);
  }
  return name + "-" + std::to_string(::getpid());
}

}  // namespace detail::redis

template <bus_message Message, class Codec = default_codec<Message>>
requires message_codec<Codec, Message>
class redis_bus {
  using local_bus = event_bus<Message>;

 public:
  using message_type = Message;
  using codec_type = Codec;
  using subscription = typename local_bus::subscription;
  // One mailbox for many topics (event_bus's inbox): remote messages reach it like local ones.
  using inbox_type = typename local_bus::inbox_type;

  // Starts the two connection threads and returns at once: Redis need not be up (see
  // connected(), wait_connected()). Throws std::invalid_argument for inconsistent options,
  // std::system_error if a thread or the wake-up pipe cannot be created.
  explicit redis_bus(redis_options options = {})
      : options_(validated(std::move(options))),
        owner_pid_(::getpid()),
        node_name_(options_.node_name.empty() ? detail::redis::generated_node_name()
                                              : options_.node_name),
        channel_(options_.channel_prefix + "events"),
        local_(std::make_unique<local_bus>(options_.local)),
        queue_(options_.send_queue_capacity) {
    try {
      sender_ = std::thread([this] { run_sender(); });
      receiver_ = std::thread([this] { run_receiver(); });
    } catch (...) {
      stop();
      throw;
    }
  }

  redis_bus(const redis_bus&) = delete;
  redis_bus& operator=(const redis_bus&) = delete;
  // Stops and joins the threads (at most io_timeout); envelopes still queued are dropped
  // (counted). Subscriptions outliving the bus are closed, as with event_bus.
  ~redis_bus() { stop(); }

  // Subscribes locally (no Redis traffic: one channel carries every topic).
  // Topics: a std::string, or anything implicitly convertible to one (or, where a view is
  // taken, to std::string_view); a null const char* throws std::invalid_argument before a
  // string or view is made of it (rule 52: until 2026-12-04 these were by-value parameters,
  // and the caller's own conversion ran strlen on the null pointer). Messages are taken as by
  // event_bus::publish: a Message lvalue is copied by its copy constructor, an rvalue moved.
  template <class T = std::string>
  requires detail::sink_argument<T, std::string>
  [[nodiscard]] subscription subscribe(T&& topic) {
    return local_->subscribe(owned_topic(std::forward<T>(topic)));
  }

  // Throws std::invalid_argument for a bounded capacity with overflow_policy::block (see the
  // header comment), and what event_bus::subscribe throws.
  template <class T = std::string>
  requires detail::sink_argument<T, std::string>
  [[nodiscard]] subscription subscribe(T&& topic, std::size_t capacity, overflow_policy policy) {
    std::string owned = owned_topic(std::forward<T>(topic));
    check_policy(capacity, policy, "subscribe");
    return local_->subscribe(std::move(owned), capacity, policy);
  }

  // An inbox of the local bus (Phoenix: one process, many topics). in.subscribe(topic) costs
  // no Redis traffic either. Capacity and policy as for subscribe (block is refused).
  [[nodiscard]] inbox_type inbox() { return local_->inbox(); }
  [[nodiscard]] inbox_type inbox(std::size_t capacity, overflow_policy policy) {
    check_policy(capacity, policy, "inbox");
    return local_->inbox(capacity, policy);
  }
  // in.subscribe(topic) / in.unsubscribe(topic), checking that `in` belongs to this bus.
  template <class T = std::string>
  requires detail::sink_argument<T, std::string>
  bool subscribe(inbox_type& in, T&& topic) {
    return local_->subscribe(in, owned_topic(std::forward<T>(topic)));
  }
  template <class T = std::string_view>
  requires detail::sink_argument<const T&, std::string_view>
  bool unsubscribe(inbox_type& in, const T& topic) {
    return local_->unsubscribe(in, topic_view(topic));
  }

  // Delivers to local subscribers at once and queues one envelope for Redis; returns how many
  // local subscribers accepted the message. Throws message_too_large (topic or encoded
  // message beyond the bounds) or Codec's exception before anything is delivered (and then a
  // Message rvalue is not moved from). A scalar Message is taken by value, as by event_bus.
  template <class T = std::string_view, class M = Message>
  requires detail::sink_argument<const T&, std::string_view> &&
      (!detail::by_value_sink<Message>)&&detail::sink_argument<M, Message> std::size_t
      publish(const T& topic, M&& message) {
    return publish_sink<M>(topic_view(topic), message, static_cast<const subscription*>(nullptr));
  }
  template <class T = std::string_view>
  requires detail::sink_argument<const T&, std::string_view> && detail::by_value_sink<Message>
      std::size_t publish(const T& topic, Message message) {
    return publish_sink<Message>(topic_view(topic), message,
                                 static_cast<const subscription*>(nullptr));
  }

  // Like publish, but `sender`'s own mailbox is skipped locally (Phoenix's broadcast_from);
  // other nodes deliver to all their subscribers.
  template <class T = std::string_view, class M = Message>
  requires detail::sink_argument<const T&, std::string_view> &&
      (!detail::by_value_sink<Message>)&&detail::sink_argument<M, Message> std::size_t
      publish_from(const subscription& sender, const T& topic, M&& message) {
    return publish_sink<M>(topic_view(topic), message, &sender);
  }
  template <class T = std::string_view>
  requires detail::sink_argument<const T&, std::string_view> && detail::by_value_sink<Message>
      std::size_t publish_from(const subscription& sender, const T& topic, Message message) {
    return publish_sink<Message>(topic_view(topic), message, &sender);
  }
  // The same for an inbox sender.
  template <class T = std::string_view, class M = Message>
  requires detail::sink_argument<const T&, std::string_view> &&
      (!detail::by_value_sink<Message>)&&detail::sink_argument<M, Message> std::size_t
      publish_from(const inbox_type& sender, const T& topic, M&& message) {
    return publish_sink<M>(topic_view(topic), message, &sender);
  }
  template <class T = std::string_view>
  requires detail::sink_argument<const T&, std::string_view> && detail::by_value_sink<Message>
      std::size_t publish_from(const inbox_type& sender, const T& topic, Message message) {
    return publish_sink<Message>(topic_view(topic), message, &sender);
  }

  [[nodiscard]] std::size_t topic_count() const { return local_->topic_count(); }
  template <class T = std::string_view>
  requires detail::sink_argument<const T&, std::string_view>
  [[nodiscard]] std::size_t subscriber_count(const T& topic) const {
    return local_->subscriber_count(topic_view(topic));
  }

  [[nodiscard]] const std::string& node_name() const noexcept { return node_name_; }
  [[nodiscard]] const std::string& channel() const noexcept { return channel_; }

  // Both connections are up and the channel is subscribed: from now on, messages other nodes
  // publish reach this node, and this node's publishes go out without waiting for a connect.
  [[nodiscard]] bool connected() const noexcept {
    // relaxed: a status snapshot; see "Memory ordering".
    return publisher_up_.load(std::memory_order_relaxed) &&
           subscriber_up_.load(std::memory_order_relaxed);
  }

  // Waits until connected() or the timeout (saturating); returns connected().
  template <class Rep, class Period>
  bool wait_connected(const std::chrono::duration<Rep, Period>& timeout) {
    const auto deadline = sync::deadline_after<std::chrono::steady_clock>(timeout);
    std::unique_lock<std::mutex> guard(state_lock_);
    return state_changed_.wait_until(guard, deadline, [&] { return connected() || stopping_; }) &&
           connected();
  }

  // Waits until the send queue is empty and nothing is in flight (so every envelope published
  // before the call was sent or dropped), or the timeout; returns whether that happened. It
  // waits for the queue to be empty, not for the envelopes published before the call: while
  // other threads keep publishing faster than the sender drains, it may time out (false)
  // although those earlier envelopes went out long ago (noted by review, 2026-12-03). Call it
  // when publishing has stopped, e.g. before destroying the bus.
  template <class Rep, class Period>
  bool flush(const std::chrono::duration<Rep, Period>& timeout) {
    return queue_.wait_drained(sync::deadline_after<std::chrono::steady_clock>(timeout));
  }

  [[nodiscard]] redis_bus_stats stats() const noexcept {
    // relaxed: independent tallies (see "Memory ordering").
    redis_bus_stats s;
    s.sent = sent_.load(std::memory_order_relaxed);
    s.received = received_.load(std::memory_order_relaxed);
    s.dropped = dropped_.load(std::memory_order_relaxed);
    s.rejected = rejected_.load(std::memory_order_relaxed);
    s.reconnects = reconnects_.load(std::memory_order_relaxed);
    s.missed = missed_.load(std::memory_order_relaxed);
    return s;
  }

  // The last connection error (empty if none yet), e.g. a refused connect or a failed AUTH.
  [[nodiscard]] std::string last_error() const {
    std::lock_guard<std::mutex> guard(state_lock_);
    return last_error_;
  }

 private:
  enum class role { publisher, subscriber };
  static constexpr std::size_t max_batch = 256;                         // PUBLISHes per pipeline
  static constexpr std::size_t max_batch_bytes = std::size_t{1} << 20;  // ... and their bytes
  // How often an idle sender checks that its connection is still open: a dead server is
  // noticed within this time even when nothing is published.
  static constexpr std::chrono::milliseconds idle_check_interval{250};

  static void check_policy(std::size_t capacity, overflow_policy policy, const char* where) {
    if (capacity != unbounded_capacity && policy == overflow_policy::block) {
      throw std::invalid_argument(
          std::string("tandem::redis_bus::") + where +
          ": overflow_policy::block with a bounded capacity is not allowed: remote messages "
          "arrive on one receiver thread, and a full blocking mailbox would stall every topic "
          "of this node; use drop_oldest or drop_newest");
    }
  }

  static redis_options validated(redis_options options) {
    auto fail = [](const std::string& what) {
      throw std::invalid_argument("tandem::redis_bus: " + what);
    };
    if (options.port <= 0 || options.port > 65535) fail("port must be in 1..65535");
    if (options.node_name.size() > 255) fail("node_name must be at most 255 bytes");
    if (options.send_queue_capacity == 0) fail("send_queue_capacity must be at least 1");
    if (options.max_message_bytes > 0xFFFFFFFFU || options.max_topic_bytes > 0xFFFFFFFFU) {
      fail("max_message_bytes and max_topic_bytes must fit the envelope's 32-bit lengths");
    }
    if (options.reconnect_min.count() <= 0 || options.reconnect_max < options.reconnect_min) {
      fail("reconnect_min must be positive and at most reconnect_max");
    }
    if (options.io_timeout.count() <= 0) fail("io_timeout must be positive");
    if (options.max_tracked_nodes == 0) fail("max_tracked_nodes must be at least 1");
    check_policy(options.local.mailbox_capacity, options.local.overflow, "redis_bus");
    return options;
  }

  // A caller's topic, checked (a null const char* throws std::invalid_argument, rule 52) before
  // a string or a view is made of it.
  template <class T>
  static std::string owned_topic(T&& topic) {
    detail::check_not_null_c_string<std::string>(std::as_const(topic), "tandem::redis_bus",
                                                 "topic");
    return detail::owned_argument<std::string>(std::forward<T>(topic));
  }
  template <class T>
  static std::string_view topic_view(const T& topic) {
    detail::check_not_null_c_string<std::string>(topic, "tandem::redis_bus", "topic");
    return topic;
  }

  // publish's body: `message` as the public function took it (M: its declared type). A
  // Message (lvalue or rvalue) is encoded as it is and handed on to the local bus with its
  // value category (which copies an lvalue and moves from an rvalue only to deliver it);
  // anything else is first converted into a Message of our own.
  template <class M, class Sender>  // Sender: subscription or inbox_type
  std::size_t publish_sink(std::string_view topic, std::remove_reference_t<M>& message,
                           const Sender* sender) {
    if constexpr (std::same_as<std::remove_cvref_t<M>, Message> &&
                  !std::is_volatile_v<std::remove_reference_t<M>>) {
      // May throw: nothing has happened yet.
      std::string envelope = encode(topic, std::as_const(message));
      const std::size_t reached =
          sender != nullptr ? local_->publish_from(*sender, topic, static_cast<M&&>(message))
                            : local_->publish(topic, static_cast<M&&>(message));  // commit
      TANDEM_SYNC_POINT();  // delivered locally, not yet queued for Redis
      if (queue_.push(std::move(envelope), detail::redis::sequence_offset + node_name_.size())) {
        dropped_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
      }
      return reached;
    } else {
      Message owned = detail::owned_argument<Message>(static_cast<M&&>(message));
      return publish_sink<Message>(topic, owned, sender);
    }
  }

  std::string encode(std::string_view topic, const Message& message) const {
    if (topic.size() > options_.max_topic_bytes) {
      throw message_too_large("tandem::redis_bus::publish: topic of " +
                              std::to_string(topic.size()) + " bytes exceeds max_topic_bytes (" +
                              std::to_string(options_.max_topic_bytes) + ")");
    }
    std::string out;
    out.reserve(20 + node_name_.size() + topic.size() + 64);
    out.append("TB");
    out.push_back(static_cast<char>(detail::redis::envelope_version));
    out.push_back(static_cast<char>(static_cast<unsigned char>(node_name_.size())));
    out.append(node_name_);
    detail::redis::append_le(out, 0, 8);  // the sequence: stamped by the send queue
    detail::redis::append_le(out, topic.size(), 4);
    out.append(topic);
    const std::size_t length_at = out.size();
    detail::redis::append_le(out, 0, 4);
    const std::size_t payload_at = out.size();
    const Codec codec{};
    if constexpr (requires { codec.encode(message, out); }) {
      codec.encode(message, out);
    } else {
      out.append(std::string(codec.encode(message)));
    }
    const std::size_t payload = out.size() - payload_at;
    if (payload > options_.max_message_bytes) {
      throw message_too_large("tandem::redis_bus::publish: encoded message of " +
                              std::to_string(payload) + " bytes exceeds max_message_bytes (" +
                              std::to_string(options_.max_message_bytes) + ")");
    }
    detail::redis::write_le(out.data() + length_at, payload, 4);
    return out;
  }

  // ----- connections --------------------------------------------------------------------

  // Sets last_error() to the concatenation of `parts`. noexcept, and the callers pass pieces
  // rather than a built std::string: it runs in the threads' catch-all handlers and in the
  // middle of a batch's accounting, where building the text must not throw again (an
  // exception there reached std::terminate, or left a half-counted batch to be resent). Out
  // of memory for the text keeps the previous one (rule 32: reporting a failure must not fail).
  void record_error(std::initializer_list<std::string_view> parts) noexcept {
    try {
      std::string text;
      for (const std::string_view part : parts) text.append(part);
      const std::lock_guard<std::mutex> guard(state_lock_);
      last_error_.swap(text);
    } catch (...) {  // std::bad_alloc (or a failing mutex): keep the previous text
    }
  }

  void set_up(role which, bool up) {
    {
      std::lock_guard<std::mutex> guard(state_lock_);
      // relaxed: written under state_lock_, which wait_connected() reads them under.
      (which == role::publisher ? publisher_up_ : subscriber_up_)
          .store(up, std::memory_order_relaxed);
    }
    state_changed_.notify_all();
  }

  bool stopping() const {
    std::lock_guard<std::mutex> guard(state_lock_);
    return stopping_;
  }

  // Sleeps for the backoff (interrupted by stop()), then doubles it, up to reconnect_max.
  // False when stopping. Both saturate (rule 10): reconnect_max may be milliseconds::max()
  // ("retry, but hardly ever"), whose wait_for overflowed into a deadline in the past (a busy
  // reconnect loop) and whose doubling overflowed.
  bool wait_backoff(std::chrono::milliseconds& delay) {
    std::unique_lock<std::mutex> guard(state_lock_);
    const bool stop_requested = state_changed_.wait_until(
        guard, sync::deadline_after<std::chrono::steady_clock>(delay), [&] { return stopping_; });
    delay = delay > options_.reconnect_max / 2 ? options_.reconnect_max : delay * 2;
    return !stop_requested;
  }

  // Rule 51: a connection proves itself by staying up for reconnect_max; only then does its
  // end reset the backoff to reconnect_min (and the thread reconnect at once). One that ends
  // sooner is a failed connect: the backoff waits and doubles. A successful handshake is no
  // proof: until 2026-12-02 it reset the backoff, and a server that answered the handshake
  // and then closed the connection (a proxy before a dead Redis, a client limit) was
  // reconnected to at full speed for ever (8,965 connects in 1 s in the test). So whatever
  // the server does, each thread connects at most about once per reconnect_max in the long
  // run. Compared in milliseconds: as steady_clock's nanoseconds, reconnect_max =
  // milliseconds::max() would overflow (rule 10); then no connection ever proves itself and
  // the backoff only grows, as "retry, but hardly ever" asks.
  bool proved_itself(std::chrono::steady_clock::time_point up_since) const noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now() - up_since) >= options_.reconnect_max;
  }

  // A command's reply, or the error (connection broken, or an error reply) in `error`.
  static detail::redis::reply_ptr command(redisContext& context,
                                          std::initializer_list<std::string_view> args,
                                          std::string& error) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const std::string_view arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    detail::redis::reply_ptr reply(static_cast<redisReply*>(
        redisCommandArgv(&context, static_cast<int>(argv.size()), argv.data(), lengths.data())));
    if (!reply) {
      error = context.errstr;
    } else if (reply->type == REDIS_REPLY_ERROR) {
      error = std::string(detail::redis::reply_text(*reply));
      reply.reset();
    }
    return reply;
  }

  // A connection whose socket stop() shuts down. io_timeout bounds each read and write, not a
  // whole reply: a peer that sends a byte now and then (overloaded, or not Redis at all) kept
  // a handshake or a reply wait going for ever, and stop() joined it for ever. The socket is
  // listed (under sockets_lock_) while the connection is open and withdrawn before it is
  // closed, so stop() never shuts down a descriptor number reused since.
  class watched_connection {
   public:
    watched_connection() = default;
    watched_connection(redis_bus& bus, role which, detail::redis::context_ptr context) noexcept
        : bus_(&bus), which_(which), context_(std::move(context)) {
      bus_->watch_socket(which_, context_->fd);
    }
    watched_connection(watched_connection&& other) noexcept
        : bus_(std::exchange(other.bus_, nullptr)),
          which_(other.which_),
          context_(std::move(other.context_)) {}
    watched_connection(const watched_connection&) = delete;
    watched_connection& operator=(const watched_connection&) = delete;
    watched_connection& operator=(watched_connection&&) = delete;
    // Withdrawn here, closed right after (context_ is destroyed after this body).
    ~watched_connection() {
      if (bus_ != nullptr) bus_->watch_socket(which_, -1);
    }
    explicit operator bool() const noexcept { return context_ != nullptr; }
    redisContext& operator*() const noexcept { return *context_; }

   private:
    redis_bus* bus_ = nullptr;
    role which_ = role::publisher;
    detail::redis::context_ptr context_;
  };

  void watch_socket(role which, int fd) noexcept {
    const std::lock_guard<std::mutex> guard(sockets_lock_);
    sockets_[which == role::publisher ? 0 : 1] = fd;
    if (fd >= 0 && sockets_shut_) ::shutdown(fd, SHUT_RDWR);  // stop() already ran
  }

  // stop()'s: every blocked read or write on the connections returns (end of stream).
  void shut_sockets() noexcept {
    const std::lock_guard<std::mutex> guard(sockets_lock_);
    sockets_shut_ = true;
    for (const int fd : sockets_) {
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
    }
  }

  // Connects (and authenticates); empty with last_error() set on failure.
  watched_connection connect(role which) {
    const char* who = which == role::publisher ? "publisher" : "subscriber";
    detail::redis::context_ptr made(redisConnectWithTimeout(
        options_.host.c_str(), options_.port, detail::redis::to_timeval(options_.io_timeout)));
    if (!made || made->err != 0) {
      std::array<char, 16> port{};
      const auto port_end =
          std::to_chars(port.data(), port.data() + port.size(), options_.port).ptr;
      record_error({who, " connect to ", options_.host, ":",
                    std::string_view(port.data(), static_cast<std::size_t>(port_end - port.data())),
                    ": ", made ? made->errstr : "cannot allocate a context"});
      return {};
    }
    watched_connection connection(*this, which, std::move(made));
    redisContext* const context = &*connection;
    // Close-on-exec, as the wake-up pipe: a child the program starts (fork + exec) must not
    // keep the server's connection open after the bus has closed it. hiredis 0.14 creates the
    // socket without SOCK_CLOEXEC, so a fork in the instant between its creation and this call
    // still inherits it.
    const int descriptor_flags = ::fcntl(context->fd, F_GETFD);
    if (descriptor_flags >= 0) (void)::fcntl(context->fd, F_SETFD, descriptor_flags | FD_CLOEXEC);
    redisEnableKeepAlive(context);  // a vanished peer is noticed eventually
    // Reads and writes time out too (SO_RCVTIMEO / SO_SNDTIMEO): hiredis's connect timeout
    // bounds only the TCP connect, so a server that accepts but never answers (stopped,
    // overloaded, not Redis at all) blocked the handshake below, a PUBLISH's reply, and with
    // them stop() and the destructor, for ever.
    if (redisSetTimeout(context, detail::redis::to_timeval(options_.io_timeout)) != REDIS_OK) {
      record_error({who, " setting the I/O timeout: ", context->errstr});
      return {};
    }
    std::string error;
    if (!options_.password.empty()) {
      const bool ok =
          options_.username.empty()
              ? command(*context, {"AUTH", options_.password}, error) != nullptr
              : command(*context, {"AUTH", options_.username, options_.password}, error) != nullptr;
      if (!ok) {
        record_error({who, " AUTH: ", error});
        return {};
      }
    }
    // The subscriber subscribes; the publisher pings, so that a server refusing it (NOAUTH,
    // LOADING, ...) is a failed connect, not a stream of refused PUBLISHes.
    const std::string_view probe = which == role::subscriber ? "SUBSCRIBE" : "PING";
    const detail::redis::reply_ptr reply = which == role::subscriber
                                               ? command(*context, {probe, channel_}, error)
                                               : command(*context, {probe}, error);
    if (!reply) {
      record_error({who, " ", probe, ": ", error});
      return {};
    }
    return connection;
  }

  // ----- the sender thread (step 5) -----------------------------------------------------

  // The bus's own threads block SIGPIPE: a write to a socket the server closed, or that stop()
  // shut down, then fails with EPIPE (a failed connection) instead of killing the process
  // (hiredis writes with plain write(); until 2026-12-01 destroying a bus mid-handshake or
  // mid-batch could end the program with SIGPIPE). A SIGPIPE left pending on the thread is
  // discarded when it exits.
  static void block_sigpipe() noexcept {
    ::sigset_t pipe;
    ::sigemptyset(&pipe);
    ::sigaddset(&pipe, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  }

  void run_sender() noexcept {
    block_sigpipe();
    std::chrono::milliseconds delay = options_.reconnect_min;
    bool had_connection = false;
    std::vector<std::string> batch;  // taken from the queue, not yet confirmed (in flight)
    while (!stopping()) {
      try {
        const watched_connection context = connect(role::publisher);
        if (context) {
          if (std::exchange(had_connection, true)) {
            reconnects_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
          }
          set_up(role::publisher, true);
          const auto up_since = std::chrono::steady_clock::now();
          send_until_failure(*context, batch);
          set_up(role::publisher, false);
          if (proved_itself(up_since)) {
            delay = options_.reconnect_min;
            continue;  // reconnect at once; the backoff starts with the next failure
          }            // else a failure: the backoff below (rule 51)
        }
      } catch (...) {
        set_up(role::publisher, false);
        record_error({"publisher: unexpected exception"});
      }
      if (!wait_backoff(delay)) break;
    }
    // relaxed: tallies.
    dropped_.fetch_add(batch.size() + queue_.stop(), std::memory_order_relaxed);
    queue_.done(batch.size());
  }

  // True when an idle publisher connection has something to read: with no reply pending,
  // that is the server closing it (or an error). Checked before writing a batch, so that a
  // connection that died while idle costs a reconnect, not the batch.
  // A signal that interrupts the poll (EINTR) says nothing about the connection: poll again.
  // (Until 2026-12-01 it counted as "closed": a program whose threads take signals, a SIGCHLD
  // handler or a sampling profiler, saw healthy connections dropped and reconnected.)
  static bool closed_while_idle(const redisContext& context) noexcept {
    ::pollfd fd{};
    fd.fd = context.fd;
    fd.events = POLLIN;
    int ready = 0;
    do {
      ready = ::poll(&fd, 1, 0);
    } while (ready < 0 && errno == EINTR);
    return ready != 0;
  }

  // Sends until the connection fails or stop(). On return, `batch` holds the envelopes that
  // were taken but not written (to be sent on the next connection), or nothing.
  void send_until_failure(redisContext& context, std::vector<std::string>& batch) {
    for (;;) {
      if (batch.empty()) {
        // The idle timeout lets an unused connection notice the server went away, so that
        // connected() tells the truth and the next publish does not meet a dead socket.
        if (!queue_.take(batch, max_batch, max_batch_bytes, idle_check_interval)) return;
      }
      if (closed_while_idle(context)) {
        record_error({"publisher: the server closed the connection"});
        return;  // the batch was not written: it goes out on the next connection
      }
      if (batch.empty()) continue;
      TANDEM_SYNC_POINT();  // taken (in flight), not yet written
      std::size_t appended = 0;
      for (const std::string& envelope : batch) {
        std::array<const char*, 3> argv{"PUBLISH", channel_.data(), envelope.data()};
        const std::array<std::size_t, 3> lengths{7, channel_.size(), envelope.size()};
        if (redisAppendCommandArgv(&context, 3, argv.data(), lengths.data()) != REDIS_OK) {
          break;
        }
        ++appended;
      }
      std::size_t confirmed = 0;
      bool failed = appended != batch.size();
      for (std::size_t i = 0; i < appended; ++i) {
        void* raw = nullptr;
        if (redisGetReply(&context, &raw) != REDIS_OK) {
          failed = true;
          break;
        }
        const detail::redis::reply_ptr reply(static_cast<redisReply*>(raw));
        if (reply->type == REDIS_REPLY_ERROR) {
          record_error({"publisher PUBLISH: ", detail::redis::reply_text(*reply)});
        } else {
          ++confirmed;
        }
      }
      // relaxed: tallies. Written but unconfirmed envelopes may or may not have reached
      // Redis: counted as dropped (at-most-once), never resent.
      sent_.fetch_add(confirmed, std::memory_order_relaxed);
      if (confirmed != batch.size()) {
        dropped_.fetch_add(batch.size() - confirmed, std::memory_order_relaxed);
      }
      const std::size_t count = batch.size();
      batch.clear();
      queue_.done(count);
      if (failed) {
        record_error({"publisher: ", context.errstr});
        return;
      }
    }
  }

  // ----- the receiver thread (step 6) ---------------------------------------------------

  void run_receiver() noexcept {
    block_sigpipe();
    std::chrono::milliseconds delay = options_.reconnect_min;
    bool had_connection = false;
    while (!stopping()) {
      try {
        const watched_connection context = connect(role::subscriber);
        if (context) {
          if (std::exchange(had_connection, true)) {
            reconnects_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
          }
          set_up(role::subscriber, true);
          const auto up_since = std::chrono::steady_clock::now();
          receive_until_failure(*context);
          set_up(role::subscriber, false);
          if (proved_itself(up_since)) {
            delay = options_.reconnect_min;
            continue;
          }  // else a failure: the backoff below (rule 51)
        }
      } catch (...) {
        set_up(role::subscriber, false);
        record_error({"subscriber: unexpected exception"});
      }
      if (!wait_backoff(delay)) break;
    }
  }

  void receive_until_failure(redisContext& context) {
    for (;;) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(&context, &raw) != REDIS_OK) {
        record_error({"subscriber: ", context.errstr});
        return;
      }
      if (raw != nullptr) {
        const detail::redis::reply_ptr reply(static_cast<redisReply*>(raw));
        handle(*reply);
        continue;
      }
      std::array<::pollfd, 2> fds{};
      fds[0].fd = context.fd;
      fds[0].events = POLLIN;
      fds[1].fd = wake_.read_end();
      fds[1].events = POLLIN;
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        record_error({"subscriber: poll failed"});
        return;
      }
      if (fds[1].revents != 0) {
        if (stopping()) return;  // stop() woke us
        wake_.drain();           // not a stop (rule 46): a byte nobody reads would spin poll()
        continue;
      }
      if (fds[0].revents != 0 && redisBufferRead(&context) != REDIS_OK) {
        record_error({"subscriber: ", context.errstr});
        return;
      }
    }
  }

  void handle(const redisReply& reply) {
    // A pub/sub push is ["message", channel, payload]; subscribe confirmations and anything
    // else are not messages.
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 3) return;
    const redisReply& kind = *reply.element[0];
    const redisReply& payload = *reply.element[2];
    if (kind.type != REDIS_REPLY_STRING || detail::redis::reply_text(kind) != "message") return;
    if (payload.type != REDIS_REPLY_STRING) {
      rejected_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
      return;
    }
    on_envelope(detail::redis::reply_text(payload));
  }

  void on_envelope(std::string_view bytes) {
    const std::optional<detail::redis::envelope_view> envelope =
        detail::redis::parse_envelope(bytes, options_.max_topic_bytes, options_.max_message_bytes);
    // relaxed (all counters below): tallies.
    if (!envelope) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (envelope->node == node_name_) return;  // our own: local subscribers had it at once
    try {
      track_sequence(envelope->node, envelope->sequence);
    } catch (...) {
      // std::bad_alloc adding a new node to the table: that node stays untracked (as after the
      // table starts over) and the message is still delivered. Escaping here dropped the
      // subscriber connection, with what hiredis had buffered, and counted the message nowhere.
    }
    std::optional<Message> message;
    try {
      const Codec codec{};
      message.emplace(codec.decode(envelope->payload));
    } catch (...) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // Counted before the delivery, so that a subscriber that has the message also sees it
    // counted; a local delivery that throws (std::bad_alloc) moves it to `rejected`, although
    // the subscribers before the failing one have it (event_bus::publish is basic, not strong,
    // across subscribers).
    received_.fetch_add(1, std::memory_order_relaxed);
    try {
      local_->publish(envelope->topic, std::move(*message));
    } catch (...) {
      received_.fetch_sub(1, std::memory_order_relaxed);
      rejected_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void track_sequence(std::string_view node, std::uint64_t sequence) {
    auto found = last_sequence_.find(node);
    if (found == last_sequence_.end()) {
      if (last_sequence_.size() >= options_.max_tracked_nodes) last_sequence_.clear();
      last_sequence_.emplace(std::string(node), sequence);
      return;
    }
    // A smaller number: that node restarted under the same name; start over without a count.
    // The number is untrusted (rule 50): the gap is computed only from a larger one (`last + 1`
    // wrapped to 0 after 2^64 - 1, and a restart then counted as a gap of itself).
    const std::uint64_t last = std::exchange(found->second, sequence);
    if (sequence > last) add_missed(sequence - last - 1);
  }

  // Saturates: `missed` only grows, and two hostile gaps near 2^64 wrapped it back to a small
  // number. Only the receiver thread writes it, so a load and a store do (no CAS loop);
  // relaxed: a tally.
  void add_missed(std::uint64_t gap) noexcept {
    const std::uint64_t before = missed_.load(std::memory_order_relaxed);
    const std::uint64_t room = std::numeric_limits<std::uint64_t>::max() - before;
    missed_.store(gap > room ? std::numeric_limits<std::uint64_t>::max() : before + gap,
                  std::memory_order_relaxed);
  }

  void stop() noexcept {
    if (::getpid() != owner_pid_) {
      forget_in_forked_child();
      return;
    }
    // Rule 12: the destructor joins both threads, so one of them cannot run it (joining itself
    // threw std::system_error inside this noexcept destructor: std::terminate with no word of
    // the cause). Before anything is stopped: the process ends here, whatever the handler does.
    const std::thread::id self = std::this_thread::get_id();
    if (self == receiver_.get_id()) destroyed_on_own_thread(role::subscriber);
    if (self == sender_.get_id()) destroyed_on_own_thread(role::publisher);
    {
      std::lock_guard<std::mutex> guard(state_lock_);
      stopping_ = true;
    }
    state_changed_.notify_all();
    dropped_.fetch_add(queue_.stop(), std::memory_order_relaxed);  // relaxed: a tally
    wake_.wake();
    shut_sockets();
    if (sender_.joinable()) sender_.join();
    if (receiver_.joinable()) receiver_.join();
  }

  // Reports a bus destroyed on one of its own threads (rule 12) and ends the process, in every
  // build: the thread's caller frames (on_envelope, the receive loop) would go on using the
  // destroyed bus after the destructor returned, so neither a detach nor a returning
  // assertion handler can be let through. The receiver runs the user's code (Codec, Message's
  // constructors and destructor); the sender runs none, but is checked as cheaply.
  [[noreturn]] TANDEM_NOINLINE static void destroyed_on_own_thread(role which) noexcept {
    detail::fatal_assertion_failed(
        "std::this_thread::get_id() != <the bus's thread>",
        which == role::subscriber
            ? "tandem::redis_bus destroyed on its own receiver thread (its last owner dropped in "
              "Codec::decode, a Message's constructor or destructor, or other code the receiver "
              "runs): the destructor must join that thread, and the thread would then return "
              "into the destroyed bus; destroy it from another thread"
            : "tandem::redis_bus destroyed on its own sender thread: the destructor must join "
              "that thread; destroy it from another thread",
        __FILE__, __LINE__, "redis_bus::~redis_bus");
  }

  // The destructor in a child made by fork() without exec (rule 46): the threads are the
  // parent's and not in this process, the sockets and the pipe are shared with the parent, and
  // a mutex another thread held at the fork stays locked here. So no lock, no write to the
  // pipe, no shutdown(), no join. The thread handles and the condition variables (whose
  // recorded waiters are those threads: glibc's pthread_cond_destroy would wait for them for
  // ever) are ended without their destructors by building empty ones in their place (a
  // joinable std::thread's destructor calls std::terminate; a pthread handle copied into a
  // child names no thread of the child and is never used). The pipe's and the queue's own
  // destructors then close this process's descriptor copies (which leaves the parent's open)
  // and free this process's memory.
  //
  // The local bus is left allocated: its destructor takes topic and mailbox locks that one of
  // the parent's threads (the receiver delivering, a publisher) may have held at the fork, and
  // the child would wait for them for ever (found by review of the first version of this fix,
  // 2026-12-02: one child in three hung at exit()). Subscriptions the child's own code holds
  // are that code's: see the header comment.
  void forget_in_forked_child() noexcept {
    std::construct_at(&sender_);
    std::construct_at(&receiver_);
    std::construct_at(&state_changed_);
    queue_.forget_waiters_in_forked_child();
    (void)local_.release();  // deliberately leaked in the child
  }

  redis_options options_;
  ::pid_t owner_pid_;  // the process that built the bus (and runs its threads)
  std::string node_name_;
  std::string channel_;
  std::unique_ptr<local_bus> local_;  // never null; leaked in a forked child (see above)
  detail::redis::send_queue queue_;
  detail::redis::wake_pipe wake_;

  std::mutex sockets_lock_;
  std::array<int, 2> sockets_{-1, -1};  // publisher's, subscriber's; guarded by sockets_lock_
  bool sockets_shut_ = false;           // stop() ran; guarded by sockets_lock_

  mutable std::mutex state_lock_;
  std::condition_variable state_changed_;  // connection flags and stopping_
  bool stopping_ = false;                  // guarded by state_lock_
  std::string last_error_;                 // guarded by state_lock_
  std::atomic<bool> publisher_up_{false};
  std::atomic<bool> subscriber_up_{false};

  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> missed_{0};

  // Only the receiver thread touches it.
  std::unordered_map<std::string, std::uint64_t, string_hash, string_equal> last_sequence_;

  std::thread sender_;  // last: started in the constructor's body, after everything above
  std::thread receiver_;
};

}  // namespace tandem
