// A hostile guest: PID 1 of a test VM in place of vessel-init. It answers
// the host just enough to be started, then misbehaves as the main
// process's first argument says:
//
//   flood MiB   malformed frames (unknown types, garbage payloads, frames
//               for streams nobody opened), then MiB of stdout frames as
//               fast as the port takes them, "FLOOD-DONE" on stdout, and
//               then it stops answering: it never reads the port again.
//   oversize    a frame header announcing 2 GiB (this and the next two
//               in one write with the SpawnResult);
//   unknown     a frame of a type the protocol does not have;
//   request     a frame only the host may send (Spawn);
//   burst       not hostile, only quick: the SpawnResult, "burst" on
//               stdout and the Exit in one write, so the host reads them
//               together; then it powers off when told to.
//
// Static, without exceptions; only what the kernel and the protocol codec
// give it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/protocol.h"

namespace p = vessel::protocol;

namespace {

int port = -1;

void write_all(const std::vector<uint8_t>& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(port, bytes.data() + off, bytes.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void send(p::MsgType type, uint32_t stream, const std::vector<uint8_t>& payload) {
  write_all(p::make_frame(type, stream, payload));
}

std::vector<uint8_t> raw_frame(uint16_t type, uint32_t stream,
                               const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> frame(p::kHeaderSize + payload.size());
  p::encode_header({static_cast<uint32_t>(payload.size()), type, 0, stream}, frame.data());
  std::memcpy(frame.data() + p::kHeaderSize, payload.data(), payload.size());
  return frame;
}

void send_raw(uint16_t type, uint32_t stream, const std::vector<uint8_t>& payload) {
  write_all(raw_frame(type, stream, payload));
}

int open_port() {
  for (int tries = 0; tries < 500; ++tries) {
    if (DIR* dir = ::opendir("/sys/class/virtio-ports")) {
      while (dirent* e = ::readdir(dir)) {
        if (std::strncmp(e->d_name, "vport", 5) != 0) continue;
        std::string name_file = std::string("/sys/class/virtio-ports/") + e->d_name + "/name";
        char name[64] = {};
        int fd = ::open(name_file.c_str(), O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = ::read(fd, name, sizeof name - 1);
        ::close(fd);
        if (n > 0 && std::string_view(name, static_cast<size_t>(n)).starts_with(p::kPortName)) {
          int port_fd = ::open((std::string("/dev/") + e->d_name).c_str(), O_RDWR | O_NOCTTY);
          if (port_fd >= 0) {
            ::closedir(dir);
            return port_fd;
          }
        }
      }
      ::closedir(dir);
    }
    ::usleep(10000);
  }
  return -1;
}

// Reads until a frame of `type` arrives.
bool await(p::FrameReader& r, p::MsgType type, p::FrameReader::Frame& f) {
  uint8_t buf[65536];
  for (;;) {
    while (r.next(f) == p::FrameReader::Status::kFrame)
      if (f.header.type == static_cast<uint16_t>(type)) return true;
    if (r.failed()) return false;
    ssize_t n = ::read(port, buf, sizeof buf);
    if (n <= 0) return false;
    r.feed(buf, static_cast<size_t>(n));
  }
}

[[noreturn]] void silent() {
  for (;;)
    ::pause();
}

}  // namespace

int main() {
  ::mount("proc", "/proc", "proc", 0, nullptr);
  ::mount("sysfs", "/sys", "sysfs", 0, nullptr);
  ::mount("devtmpfs", "/dev", "devtmpfs", 0, nullptr);
  port = open_port();
  if (port < 0) silent();

  send(p::MsgType::kHello, 0, p::encode(p::Hello{p::kVersion, "hostile-init"}));
  p::FrameReader reader;
  p::FrameReader::Frame f;
  if (!await(reader, p::MsgType::kSetup, f)) silent();
  send(p::MsgType::kSetupResult, 0, p::encode(p::Reply{0, "", 0}));
  if (!await(reader, p::MsgType::kSpawn, f)) silent();
  uint32_t main_stream = f.header.stream;
  p::Spawn spawn;
  if (!p::decode(f.payload, spawn) || spawn.argv.empty()) silent();
  std::vector<uint8_t> result =
      p::make_frame(p::MsgType::kSpawnResult, main_stream, p::encode(p::Reply{0, "", 1}));
  if (spawn.argv[0] == "burst") {
    const char text[] = "burst\n";
    for (const auto& frame :
         {p::make_frame(p::MsgType::kStdout, main_stream,
                        std::vector<uint8_t>(text, text + sizeof text - 1)),
          p::make_frame(p::MsgType::kExit, main_stream, p::encode(p::Exit{0, 0, 0}))})
      result.insert(result.end(), frame.begin(), frame.end());
    write_all(result);
    if (await(reader, p::MsgType::kPoweroff, f)) ::reboot(RB_AUTOBOOT);
    silent();
  }
  // The bad frame goes in one write with the SpawnResult, so the host
  // reads them together: the start succeeds, then the session ends.
  std::vector<uint8_t> bad;
  if (spawn.argv[0] == "oversize") {
    bad.resize(p::kHeaderSize);
    p::encode_header({0x80000000u, static_cast<uint16_t>(p::MsgType::kStdout), 0, main_stream},
                     bad.data());
  } else if (spawn.argv[0] == "unknown") {
    bad = raw_frame(999, main_stream, std::vector<uint8_t>(100, 1));
  } else if (spawn.argv[0] == "request") {
    bad = p::make_frame(p::MsgType::kSpawn, 7, p::encode(spawn));
  }
  if (!bad.empty()) {
    result.insert(result.end(), bad.begin(), bad.end());
    write_all(result);
    silent();
  }
  write_all(result);

  // flood MiB
  size_t mib = spawn.argv.size() > 1 ? std::strtoul(spawn.argv[1].c_str(), nullptr, 10) : 64;
  // Well framed, badly meant: garbage payloads, answers nobody asked for,
  // streams nobody opened. Each is dropped; none ends the session.
  std::vector<uint8_t> junk(1000, 0xa5);
  send_raw(static_cast<uint16_t>(p::MsgType::kStatsResult), 0, {1, 2, 3});  // unasked, malformed
  send_raw(static_cast<uint16_t>(p::MsgType::kExit), 4242, junk);           // nobody's stream
  send_raw(static_cast<uint16_t>(p::MsgType::kSpawnResult), main_stream, {9});
  send_raw(static_cast<uint16_t>(p::MsgType::kStdinAck), main_stream, junk);
  std::vector<uint8_t> chunk(64 << 10, 'x');
  for (size_t i = 0; i < 64; ++i)
    chunk[i * 1024 + 1023] = '\n';
  for (size_t sent = 0; sent < (mib << 20); sent += chunk.size())
    send(p::MsgType::kStdout, main_stream, chunk);
  const char done[] = "FLOOD-DONE\n";
  send(p::MsgType::kStdout, main_stream, std::vector<uint8_t>(done, done + sizeof done - 1));
  silent();
}
