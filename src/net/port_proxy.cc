#include "net/port_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "base/log.h"
#include "base/unique_fd.h"

namespace vessel::net {
namespace {

using Clock = std::chrono::steady_clock;

// Per direction of a TCP connection: the most the proxy holds for a peer
// that does not read. When it is full the proxy stops reading the other
// side, so the sender's kernel window closes (backpressure end to end).
constexpr size_t kBufferSize = 64 * 1024;
// UDP has no close: a flow (a client address and the socket connected to
// the target for it) ends after this long without a datagram either way, as
// conntrack's UDP timeouts do.
constexpr auto kFlowIdle = std::chrono::seconds(60);
constexpr size_t kMaxFlows = 1024;
// The largest UDP payload over IPv4 (65535 - 20 - 8), so nothing is truncated.
constexpr size_t kMaxDatagram = 65507;
// After accept() fails for want of fds or memory, the listener's edge is
// spent: retry this often until it succeeds.
constexpr int kAcceptRetryMs = 100;

enum class Kind { kStop, kTcpListener, kUdpListener, kTcpSide, kUdpFlow };

// What an epoll event's data.ptr points at.
struct Handler {
  explicit Handler(Kind k) : kind(k) {}
  Kind kind;
};

struct Listener : Handler {
  Listener(Kind k, UniqueFd f, PortMapping m) : Handler(k), fd(std::move(f)), mapping(m) {}
  UniqueFd fd;
  PortMapping mapping;  // host_port as bound
  bool retry_accept = false;
};

// A byte ring of kBufferSize, allocated while it holds data: an idle
// connection costs no buffer.
class Ring {
 public:
  size_t size() const { return len_; }
  bool full() const { return len_ == kBufferSize; }
  // The free space as up to two iovecs.
  int free_space(iovec iov[2]) {
    if (!data_) data_.reset(new char[kBufferSize]);
    size_t tail = (head_ + len_) % kBufferSize;
    size_t free = kBufferSize - len_;
    size_t first = std::min(free, kBufferSize - tail);
    iov[0] = {data_.get() + tail, first};
    if (free == first) return 1;
    iov[1] = {data_.get(), free - first};
    return 2;
  }
  void produced(size_t n) { len_ += n; }
  // The held bytes as up to two iovecs.
  int data(iovec iov[2]) const {
    size_t first = std::min(len_, kBufferSize - head_);
    iov[0] = {data_.get() + head_, first};
    if (len_ == first) return 1;
    iov[1] = {data_.get(), len_ - first};
    return 2;
  }
  void consumed(size_t n) {
    head_ = (head_ + n) % kBufferSize;
    len_ -= n;
    if (len_ == 0) {
      head_ = 0;
      data_.reset();
    }
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t head_ = 0;
  size_t len_ = 0;
};

struct Connection;

// One socket of a proxied TCP connection. Events are edge-triggered, so
// `readable` and `writable` remember the readiness last reported until a
// call returns EAGAIN: the buffers decide whether to use it.
struct Side : Handler {
  Side() : Handler(Kind::kTcpSide) {}
  Connection* conn = nullptr;
  UniqueFd fd;
  bool readable = false;
  bool writable = false;
  bool eof = false;      // read returned 0: the peer will send nothing more
  bool shut_wr = false;  // we sent our FIN to this peer
};

struct Connection {
  Side client;  // accepted on the host port
  Side server;  // connected to the target
  Ring up;      // client -> server
  Ring down;    // server -> client
  bool connecting = true;
  bool dead = false;
};

using FlowKey = std::tuple<const Listener*, uint32_t /*client ip*/, uint16_t /*client port*/,
                           uint32_t /*local ip*/>;

struct Flow : Handler {
  Flow() : Handler(Kind::kUdpFlow) {}
  FlowKey key;
  Listener* listener = nullptr;
  sockaddr_in client{};
  in_addr local{};  // the address the client sent to, so replies come from it
  UniqueFd fd;      // connected to the target
  Clock::time_point last;
  bool dead = false;
};

sockaddr_in inet_address(uint32_t host_order_ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(host_order_ip);
  return a;
}

bool transient_accept_error(int e) {
  // accept(2): errors of the connection being accepted, already gone.
  return e == ECONNABORTED || e == EPROTO || e == EPERM || e == ENETDOWN || e == ENOPROTOOPT ||
         e == EHOSTDOWN || e == ENONET || e == EHOSTUNREACH || e == EOPNOTSUPP ||
         e == ENETUNREACH || e == EINTR;
}

Result<UniqueFd> bind_listener(const PortMapping& m, uint16_t* bound_port) {
  std::string what = "publish " + to_string(m);
  uint32_t ip = 0;  // INADDR_ANY
  if (!m.host_ip.empty()) {
    auto a = Ipv4::parse(m.host_ip);
    if (!a) return a.error().wrap(what);
    ip = a->value;
  }
  bool tcp = m.proto == Proto::kTcp;
  UniqueFd fd(
      ::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error::from_errno(errno, what + ": socket");
  int one = 1;
  // TCP: connections of a previous proxy in TIME_WAIT must not block a
  // restart. Linux still refuses a port another socket listens on, so a
  // port in use remains an error. UDP gets no SO_REUSEADDR: there it would
  // let two sockets share the port silently.
  if (tcp && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    return Error::from_errno(errno, what + ": SO_REUSEADDR");
  // UDP: learn the address each datagram was sent to, to reply from it.
  if (!tcp && ::setsockopt(fd.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0)
    return Error::from_errno(errno, what + ": IP_PKTINFO");
  auto in_use = [&] {
    return Error(ErrorCode::kAlreadyExists,
                 "port " + port_key(m.host_port, m.proto) + " is already in use")
        .wrap(what);
  };
  sockaddr_in addr = inet_address(ip, m.host_port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    if (e == EADDRINUSE) return in_use();
    if (e == EADDRNOTAVAIL)
      return Error(ErrorCode::kInvalidArgument,
                   "address " + m.host_ip + " is not an address of this host", e)
          .wrap(what);
    if (e == EACCES)
      return Error(ErrorCode::kPermissionDenied,
                   "port " + std::to_string(m.host_port) +
                       " is privileged (needs root or CAP_NET_BIND_SERVICE)",
                   e)
          .wrap(what);
    return Error::from_errno(e, what + ": bind");
  }
  // With SO_REUSEADDR two sockets may bind the same port; the conflict then
  // shows at listen().
  if (tcp && ::listen(fd.get(), SOMAXCONN) != 0) {
    if (errno == EADDRINUSE) return in_use();
    return Error::from_errno(errno, what + ": listen");
  }
  sockaddr_in got{};
  socklen_t len = sizeof got;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&got), &len) != 0)
    return Error::from_errno(errno, what + ": getsockname");
  *bound_port = ntohs(got.sin_port);
  return fd;
}

}  // namespace

struct PortProxy::Impl {
  std::vector<PortMapping> mappings;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::atomic<uint32_t> target{0};
  UniqueFd epoll;
  UniqueFd stop;
  Handler stop_handler{Kind::kStop};
  std::thread thread;

  // Owned by the thread from start on.
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections;
  std::map<FlowKey, std::unique_ptr<Flow>> flows;
  // Closed during one epoll_wait batch, freed after it: a later event of
  // the same batch may still point at them.
  std::vector<std::unique_ptr<Connection>> dead_connections;
  std::vector<std::unique_ptr<Flow>> dead_flows;
  Clock::time_point next_sweep;
  std::unique_ptr<char[]> datagram{new char[kMaxDatagram]};

  ~Impl() {
    if (thread.joinable()) {
      uint64_t one = 1;
      ssize_t n = ::write(stop.get(), &one, sizeof one);
      (void)n;  // an eventfd write of 1 cannot fail short of overflow
      thread.join();
    }
  }

  bool watch(int fd, Handler* h, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = h;
    return ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  }

  void run();
  void accept_all(Listener& l);
  void start_connection(Listener& l, UniqueFd client);
  void on_side(Side& s, uint32_t events);
  void pump(Connection& c);
  // Moves bytes from `from` through `ring` to `to`; false on a socket error.
  bool transfer(Side& from, Ring& ring, Side& to, bool to_ready, bool* progress);
  void close_connection(Connection& c, bool reset);
  void on_datagrams(Listener& l);
  Flow* flow_for(Listener& l, const sockaddr_in& client, in_addr local);
  void on_replies(Flow& f);
  void close_flow(Flow& f);
  void expire_flows(Clock::time_point now);
};

void PortProxy::Impl::run() {
  // Signals are for the monitor's other threads (its signalfd); none may be
  // delivered here.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  epoll_event events[64];
  while (true) {
    int timeout = -1;
    for (auto& l : listeners)
      if (l->retry_accept) timeout = kAcceptRetryMs;
    if (!flows.empty()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_sweep - Clock::now());
      int ms = static_cast<int>(std::max<int64_t>(0, left.count()) + 1);
      timeout = timeout < 0 ? ms : std::min(timeout, ms);
    }
    int n = ::epoll_wait(epoll.get(), events, 64, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Only EBADF/EFAULT/EINVAL remain: a bug, not a condition to wait out.
      log::error(std::string("port proxy: epoll_wait: ") + std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<Handler*>(events[i].data.ptr);
      switch (h->kind) {
        case Kind::kStop:
          return;
        case Kind::kTcpListener:
          accept_all(*static_cast<Listener*>(h));
          break;
        case Kind::kUdpListener:
          on_datagrams(*static_cast<Listener*>(h));
          break;
        case Kind::kTcpSide:
          on_side(*static_cast<Side*>(h), events[i].events);
          break;
        case Kind::kUdpFlow:
          if (!static_cast<Flow*>(h)->dead) on_replies(*static_cast<Flow*>(h));
          break;
      }
    }
    dead_connections.clear();
    dead_flows.clear();
    for (auto& l : listeners)
      if (l->retry_accept) accept_all(*l);
    auto now = Clock::now();
    if (!flows.empty() && now >= next_sweep) expire_flows(now);
  }
}

void PortProxy::Impl::accept_all(Listener& l) {
  l.retry_accept = false;
  while (true) {
    int fd = ::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      start_connection(l, UniqueFd(fd));
      continue;
    }
    if (errno == EAGAIN) return;
    if (transient_accept_error(errno)) continue;
    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the backlog keeps the clients; try
    // again shortly rather than spin.
    log::warn("port proxy: accept on " + to_string(l.mapping) + ": " + std::strerror(errno));
    l.retry_accept = true;
    return;
  }
}

void PortProxy::Impl::start_connection(Listener& l, UniqueFd client) {
  auto refuse = [&](const char* step) {
    log::warn(std::string("port proxy: ") + step + " for " + to_string(l.mapping) + ": " +
              std::strerror(errno));
    // An RST tells the client at once that there is nothing behind the port.
    linger lg{1, 0};
    ::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  };
  UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!server) return refuse("socket");
  // Forward each write as it comes, as the peers wrote it; batching is the
  // endpoints' business (Go's docker-proxy has the same default).
  int one = 1;
  ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(server.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in to = inet_address(target.load(), l.mapping.container_port);
  bool connecting = false;
  if (::connect(server.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    if (errno != EINPROGRESS) return refuse("connect");
    connecting = true;
  }
  auto c = std::make_unique<Connection>();
  c->connecting = connecting;
  c->client.conn = c->server.conn = c.get();
  c->client.fd = std::move(client);
  c->server.fd = std::move(server);
  c->server.writable = !connecting;
  uint32_t ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  if (!watch(c->client.fd.get(), &c->client, ev) || !watch(c->server.fd.get(), &c->server, ev)) {
    log::warn(std::string("port proxy: epoll_ctl: ") + std::strerror(errno));
    return;  // both sockets close with `c`; nothing can point at it yet
  }
  Connection* raw = c.get();
  connections.emplace(raw, std::move(c));
}

void PortProxy::Impl::on_side(Side& s, uint32_t events) {
  Connection& c = *s.conn;
  if (c.dead) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s.readable = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s.writable = true;
  if (c.connecting && &s == &c.server) {
    if (!(events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) return;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      // Nothing listens behind the port (yet): the client sees a reset, as
      // it would connecting to a closed port directly.
      return close_connection(c, /*reset=*/true);
    }
    c.connecting = false;
  }
  pump(c);
}

bool PortProxy::Impl::transfer(Side& from, Ring& ring, Side& to, bool to_ready, bool* progress) {
  if (from.readable && !from.eof && !ring.full()) {
    iovec iov[2];
    int cnt = ring.free_space(iov);
    ssize_t n = ::readv(from.fd.get(), iov, cnt);
    if (n > 0) {
      ring.produced(static_cast<size_t>(n));
      *progress = true;
    } else if (n == 0) {
      from.eof = true;
      *progress = true;
    } else if (errno == EAGAIN) {
      from.readable = false;
    } else if (errno == EINTR) {
      *progress = true;
    } else {
      return false;
    }
    if (ring.size() == 0) ring.consumed(0);  // release a buffer allocated for nothing
  }
  if (!to_ready) return true;
  if (to.writable && ring.size() > 0) {
    iovec iov[2];
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(ring.data(iov));
    ssize_t n = ::sendmsg(to.fd.get(), &msg, MSG_NOSIGNAL);
    if (n > 0) {
      ring.consumed(static_cast<size_t>(n));
      *progress = true;
    } else if (errno == EAGAIN) {
      to.writable = false;
    } else if (errno == EINTR) {
      *progress = true;
    } else {
      return false;
    }
  }
  // Half-close: the sender is done and all it sent is delivered, so pass
  // its FIN on; the other direction keeps flowing.
  if (from.eof && ring.size() == 0 && !to.shut_wr) {
    ::shutdown(to.fd.get(), SHUT_WR);
    to.shut_wr = true;
    *progress = true;
  }
  return true;
}

void PortProxy::Impl::pump(Connection& c) {
  bool progress = true;
  while (progress) {
    progress = false;
    if (!transfer(c.client, c.up, c.server, !c.connecting, &progress) ||
        !transfer(c.server, c.down, c.client, true, &progress)) {
      // A reset or a write to a peer that closed: pass the abort on.
      return close_connection(c, /*reset=*/true);
    }
  }
  if (c.client.shut_wr && c.server.shut_wr) close_connection(c, /*reset=*/false);
}

void PortProxy::Impl::close_connection(Connection& c, bool reset) {
  if (reset) {
    linger lg{1, 0};
    ::setsockopt(c.client.fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::setsockopt(c.server.fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  c.dead = true;
  // Closing the fds takes them out of the epoll set; the object lives until
  // the batch is done.
  c.client.fd.reset();
  c.server.fd.reset();
  auto it = connections.find(&c);
  if (it == connections.end()) return;
  dead_connections.push_back(std::move(it->second));
  connections.erase(it);
}

void PortProxy::Impl::on_datagrams(Listener& l) {
  char* buf = datagram.get();
  while (true) {
    sockaddr_in client{};
    iovec iov{buf, kMaxDatagram};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))];
    msghdr msg{};
    msg.msg_name = &client;
    msg.msg_namelen = sizeof client;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(l.fd.get(), &msg, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN)
        log::warn("port proxy: receive on " + to_string(l.mapping) + ": " + std::strerror(errno));
      return;
    }
    in_addr local{};
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
      if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
        local = reinterpret_cast<in_pktinfo*>(CMSG_DATA(cm))->ipi_addr;
    Flow* f = flow_for(l, client, local);
    if (!f) continue;  // no socket for it: the datagram is dropped, as UDP may
    f->last = Clock::now();
    // Errors (ECONNREFUSED from an earlier ICMP, a full buffer) drop this
    // datagram only; the client retries as UDP clients do.
    (void)::send(f->fd.get(), buf, static_cast<size_t>(n), MSG_NOSIGNAL);
  }
}

Flow* PortProxy::Impl::flow_for(Listener& l, const sockaddr_in& client, in_addr local) {
  FlowKey key{&l, client.sin_addr.s_addr, client.sin_port, local.s_addr};
  auto it = flows.find(key);
  if (it != flows.end()) return it->second.get();
  if (flows.size() >= kMaxFlows) {
    // Make room by ending the flow idle the longest.
    auto oldest = flows.begin();
    for (auto i = flows.begin(); i != flows.end(); ++i)
      if (i->second->last < oldest->second->last) oldest = i;
    close_flow(*oldest->second);
  }
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return nullptr;
  sockaddr_in to = inet_address(target.load(), l.mapping.container_port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return nullptr;
  auto f = std::make_unique<Flow>();
  f->key = key;
  f->listener = &l;
  f->client = client;
  f->local = local;
  f->fd = std::move(fd);
  f->last = Clock::now();
  if (!watch(f->fd.get(), f.get(), EPOLLIN | EPOLLET)) return nullptr;
  if (flows.empty()) next_sweep = Clock::now() + std::chrono::seconds(1);
  Flow* raw = f.get();
  flows.emplace(key, std::move(f));
  return raw;
}

void PortProxy::Impl::on_replies(Flow& f) {
  char* buf = datagram.get();
  while (true) {
    ssize_t n = ::recv(f.fd.get(), buf, kMaxDatagram, 0);
    if (n < 0) {
      // ECONNREFUSED: an ICMP port unreachable for an earlier datagram
      // (nothing listens in the container yet); the flow stays.
      if (errno == EINTR || errno == ECONNREFUSED) continue;
      return;
    }
    f.last = Clock::now();
    // Reply from the listening socket, from the address the client used,
    // so the client sees the answer come from where it sent.
    iovec iov{buf, static_cast<size_t>(n)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
    msghdr msg{};
    msg.msg_name = &f.client;
    msg.msg_namelen = sizeof f.client;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (f.local.s_addr != 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = IPPROTO_IP;
      cm->cmsg_type = IP_PKTINFO;
      cm->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo info{};
      info.ipi_spec_dst = f.local;
      std::memcpy(CMSG_DATA(cm), &info, sizeof info);
    }
    (void)::sendmsg(f.listener->fd.get(), &msg, MSG_NOSIGNAL);
  }
}

void PortProxy::Impl::close_flow(Flow& f) {
  f.dead = true;
  f.fd.reset();
  auto it = flows.find(f.key);
  if (it == flows.end()) return;
  dead_flows.push_back(std::move(it->second));
  flows.erase(it);
}

void PortProxy::Impl::expire_flows(Clock::time_point now) {
  for (auto it = flows.begin(); it != flows.end();) {
    auto next = std::next(it);
    if (now - it->second->last >= kFlowIdle) close_flow(*it->second);
    it = next;
  }
  dead_flows.clear();  // between batches: no event can point at them
  next_sweep = now + std::chrono::seconds(1);
}

Result<std::unique_ptr<PortProxy>> PortProxy::start(const std::vector<PortMapping>& mappings,
                                                    Ipv4 target) {
  auto impl = std::make_unique<Impl>();
  impl->target.store(target.value);
  // Every port is bound before the thread starts: a failure returns here
  // and the sockets bound so far close with `impl`.
  for (const PortMapping& m : mappings) {
    uint16_t port = 0;
    VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, bind_listener(m, &port));
    PortMapping bound = m;
    bound.host_port = port;
    impl->mappings.push_back(bound);
    impl->listeners.push_back(std::make_unique<Listener>(
        m.proto == Proto::kTcp ? Kind::kTcpListener : Kind::kUdpListener, std::move(fd), bound));
  }
  impl->epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!impl->epoll) return Error::from_errno(errno, "port proxy: epoll_create1");
  impl->stop.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl->stop) return Error::from_errno(errno, "port proxy: eventfd");
  if (!impl->watch(impl->stop.get(), &impl->stop_handler, EPOLLIN))
    return Error::from_errno(errno, "port proxy: epoll_ctl");
  for (auto& l : impl->listeners)
    if (!impl->watch(l->fd.get(), l.get(), EPOLLIN | EPOLLET))
      return Error::from_errno(errno, "port proxy: epoll_ctl");
  try {
    impl->thread = std::thread([p = impl.get()] { p->run(); });
  } catch (const std::system_error& e) {
    return Error(ErrorCode::kInternal, std::string("port proxy: start thread: ") + e.what());
  }
  return std::unique_ptr<PortProxy>(new PortProxy(std::move(impl)));
}

PortProxy::PortProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PortProxy::~PortProxy() = default;

const std::vector<PortMapping>& PortProxy::bound() const {
  return impl_->mappings;
}

void PortProxy::set_target(Ipv4 target) {
  impl_->target.store(target.value);
}

}  // namespace vessel::net
