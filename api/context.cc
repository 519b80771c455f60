#include "api/context.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

#include "api/http.h"
#include "sys/fs.h"

namespace vessel::api {

std::shared_ptr<AttachWaiter> Context::wait_for_start(const std::string& id) {
  auto w = std::make_shared<AttachWaiter>();
  std::lock_guard lock(mu_);
  waiters_[id].push_back(w);
  return w;
}

void Context::forget_waiter(const std::string& id, const std::shared_ptr<AttachWaiter>& w) {
  std::lock_guard lock(mu_);
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return;
  std::erase(it->second, w);
  if (it->second.empty()) waiters_.erase(it);
}

std::vector<std::shared_ptr<AttachWaiter>> Context::take_waiters(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return {};
  auto out = std::move(it->second);
  waiters_.erase(it);
  return out;
}

void Context::notify_started(const std::string& id) {
  std::lock_guard lock(mu_);
  ++starts_[id];
  started_cv_.notify_all();
}

uint64_t Context::start_count(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = starts_.find(id);
  return it == starts_.end() ? 0 : it->second;
}

void Context::await_start(const std::string& id, uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  started_cv_.wait_for(lock, timeout, [&] {
    auto it = starts_.find(id);
    return it != starts_.end() && it->second > seen;
  });
}

void Context::publish(nlohmann::json event) {
  std::lock_guard lock(mu_);
  events_.push_back(std::move(event));
  if (events_.size() > kEventHistory) events_.pop_front();
  ++event_count_;
  events_cv_.notify_all();
}

void Context::await_event(uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  events_cv_.wait_for(lock, timeout, [&] { return event_count_ > seen; });
}

uint64_t Context::event_count() {
  std::lock_guard lock(mu_);
  return event_count_;
}

std::vector<nlohmann::json> Context::events_after(uint64_t seen, uint64_t* next) {
  std::lock_guard lock(mu_);
  std::vector<nlohmann::json> out;
  if (next) *next = event_count_;
  uint64_t first = event_count_ - events_.size();  // sequence number of events_[0]
  for (uint64_t i = std::max(seen, first); i < event_count_; ++i)
    out.push_back(events_[i - first]);
  return out;
}

void Context::hear_exit(const std::string& id, int code) {
  std::lock_guard lock(mu_);
  if (exits_.size() > 1024) exits_.clear();
  exits_[id] = code;
}

int Context::heard_exit(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = exits_.find(id);
  return it == exits_.end() ? -1 : it->second;
}

std::shared_ptr<ExecEntry> Context::add_exec(std::shared_ptr<ExecEntry> e) {
  std::lock_guard lock(mu_);
  execs_[e->id] = e;
  return e;
}

std::shared_ptr<ExecEntry> Context::exec(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = execs_.find(id);
  if (it != execs_.end()) return it->second;
  // Docker accepts a unique prefix.
  std::shared_ptr<ExecEntry> found;
  for (auto& [k, v] : execs_)
    if (!id.empty() && k.compare(0, id.size(), id) == 0) {
      if (found) return nullptr;
      found = v;
    }
  return found;
}

Status Exchange::write(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error(ErrorCode::kUnavailable, "the client went away");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok_status();
}

namespace {

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 101:
      return "UPGRADED";
    case 404:
      return "Not Found";
    default:
      return "OK";
  }
}

}  // namespace

Status Exchange::begin_stream(int status, const std::string& content_type,
                              const std::map<std::string, std::string>& headers) {
  std::string extra;
  for (const auto& [k, v] : headers)
    extra += k + ": " + v + "\r\n";
  return write("HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
               "\r\nContent-Type: " + content_type + "\r\nApi-Version: " + kApiVersion +
               "\r\nServer: Vessel\r\n" + extra + "Connection: close\r\n\r\n");
}

Status Exchange::hijack(bool multiplexed) {
  std::string type = multiplexed ? "application/vnd.docker.multiplexed-stream"
                                 : "application/vnd.docker.raw-stream";
  if (!upgrade_) return begin_stream(200, type);
  return write("HTTP/1.1 101 UPGRADED\r\nContent-Type: " + type +
               "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nApi-Version: " + kApiVersion +
               "\r\n\r\n");
}

bool Exchange::client_gone() const {
  // Not POLLRDHUP: clients half-close when they have no stdin to send
  // (docker's CloseWrite) and still read. POLLHUP is both directions.
  pollfd p{fd_, 0, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLHUP | POLLERR)) != 0;
}

std::string frame_stream(uint8_t stream, std::string_view data) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(stream);
  uint32_t n = static_cast<uint32_t>(data.size());
  out[4] = static_cast<char>(n >> 24);
  out[5] = static_cast<char>(n >> 16);
  out[6] = static_cast<char>(n >> 8);
  out[7] = static_cast<char>(n);
  out.append(data);
  return out;
}

}  // namespace vessel::api
