// A UDP echo server for the network tests, static so that it runs in the
// busybox image (whose nc has no UDP): bind-mounted into a container,
//   vessel-udp-echo PORT
// answers every datagram with "echo:" + its bytes and prints
// "got <bytes> from <address>" for each on stdout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: vessel-udp-echo PORT\n");
    return 2;
  }
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
    std::perror("vessel-udp-echo: bind");
    return 1;
  }
  std::printf("listening on %s/udp\n", argv[1]);
  std::fflush(stdout);
  while (true) {
    char buf[2048];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) continue;
    std::string reply = "echo:" + std::string(buf, static_cast<size_t>(n));
    ::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &from.sin_addr, text, sizeof text);
    std::printf("got %.*s from %s\n", static_cast<int>(n), buf, text);
    std::fflush(stdout);
  }
}
