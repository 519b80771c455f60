// vessel registry login|logout|ls: credentials in <state root>/config.json
// (Docker's format, mode 0600), which pulls read before Docker's own file.
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <iterator>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "image/reference.h"
#include "registry/client.h"
#include "registry/credentials.h"
#include "runtime/paths.h"
#include "sys/fs.h"

namespace vessel::cli {
namespace {

// The terminal settings to put back if a signal ends the process while echo
// is off (^C at the password prompt). Read only by the handler.
termios g_saved_termios{};

// Restores the terminal, then dies of the same signal with its default
// action, so the exit status says what happened (130 for ^C). tcsetattr,
// sigaction and raise are async-signal-safe (signal-safety(7)).
void restore_terminal_and_reraise(int sig) {
  ::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);
}

// Reads a line from the terminal without echo; nullopt at EOF.
std::optional<std::string> prompt_no_echo(const std::string& prompt) {
  // Echo goes off before the prompt shows, and input typed ahead is kept
  // (TCSANOW, not TCSAFLUSH).
  constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
  struct sigaction previous[std::size(kSignals)]{};
  termios old{};
  bool restore = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (restore) {
    g_saved_termios = old;
    struct sigaction sa {};
    sa.sa_handler = restore_terminal_and_reraise;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kSignals); ++i)
      ::sigaction(kSignals[i], &sa, &previous[i]);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::cerr << prompt << std::flush;
  std::string line;
  bool got = static_cast<bool>(std::getline(std::cin, line));
  if (restore) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    for (size_t i = 0; i < std::size(kSignals); ++i)
      ::sigaction(kSignals[i], &previous[i], nullptr);
  }
  if (!got) return std::nullopt;
  return line;
}

// Checks `creds` against GET <base>/v2/: a 401 challenge is answered with
// basic auth or a bearer token fetched with the credentials.
Status verify_login(const std::string& host, registry::Scheme scheme, bool insecure_tls,
                    const registry::Credentials& creds) {
  VESSEL_ASSIGN_OR_RETURN(registry::RegistryClient client,
                          registry::RegistryClient::create(
                              {.host = host, .scheme = scheme, .insecure_tls = insecure_tls}));
  registry::HttpClient http(registry::HttpOptions{.insecure_tls = insecure_tls});
  std::string url = client.base_url() + "/v2/";
  auto denied = [&] {
    return Error(ErrorCode::kPermissionDenied,
                 "login to '" + host + "' failed: unauthorized: incorrect username or password");
  };
  VESSEL_ASSIGN_OR_RETURN(registry::HttpResponse r, http.perform({.url = url}));
  if (r.status >= 200 && r.status < 300) {
    // No auth required; send the credentials anyway in case they are checked.
    VESSEL_ASSIGN_OR_RETURN(
        r, http.perform({.url = url,
                         .headers = {"Authorization: " + registry::basic_authorization(creds)}}));
    if (r.status == 401 || r.status == 403) return denied();
    return ok_status();
  }
  if (r.status != 401)
    return Error(ErrorCode::kProtocol,
                 "GET " + url + ": unexpected status " + std::to_string(r.status));
  std::vector<registry::Challenge> challenges;
  for (const auto& h : r.headers.get_all("WWW-Authenticate")) {
    VESSEL_ASSIGN_OR_RETURN(auto cs, registry::parse_www_authenticate(h));
    challenges.insert(challenges.end(), cs.begin(), cs.end());
  }
  for (const auto& c : challenges) {
    if (c.scheme == "bearer") {
      auto token = registry::fetch_token(http, c, "", creds);
      if (!token.ok()) {
        if (token.error().code() == ErrorCode::kPermissionDenied) return denied();
        return token.error().wrap("login to '" + host + "'");
      }
      VESSEL_ASSIGN_OR_RETURN(
          r, http.perform({.url = url, .headers = {"Authorization: Bearer " + token->token}}));
      if (r.status >= 200 && r.status < 300) return ok_status();
      return denied();
    }
  }
  for (const auto& c : challenges) {
    if (c.scheme == "basic") {
      VESSEL_ASSIGN_OR_RETURN(
          r, http.perform({.url = url,
                           .headers = {"Authorization: " + registry::basic_authorization(creds)}}));
      if (r.status >= 200 && r.status < 300) return ok_status();
      if (r.status == 401 || r.status == 403) return denied();
      return Error(ErrorCode::kProtocol,
                   "GET " + url + ": unexpected status " + std::to_string(r.status));
    }
  }
  return Error(ErrorCode::kProtocol,
               "login to '" + host + "': the registry's authentication challenge is not supported");
}

struct LoginFlags {
  std::string server;
  std::string username;
  bool password_stdin = false;
  std::string scheme = "auto";
  bool tls_verify = true;
};

int login(const LoginFlags& f, const GlobalOptions& g) {
  std::string key = registry::canonical_registry(f.server);
  if (key.empty()) {
    print_error("login: invalid server '" + f.server + "'");
    return kExitFailure;
  }
  registry::Scheme scheme = f.scheme == "http"    ? registry::Scheme::kHttp
                            : f.scheme == "https" ? registry::Scheme::kHttps
                                                  : registry::Scheme::kAuto;
  registry::Credentials creds{f.username, ""};
  bool tty = ::isatty(STDIN_FILENO);
  if (creds.username.empty()) {
    if (f.password_stdin || !tty) {
      print_error("login: --username is required with --password-stdin or without a terminal");
      return kExitFailure;
    }
    std::cerr << "Username: " << std::flush;
    if (!std::getline(std::cin, creds.username) || creds.username.empty()) {
      print_error("login: a username is required");
      return kExitFailure;
    }
  }
  if (f.password_stdin) {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (all.ends_with("\n")) all.pop_back();
    if (all.ends_with("\r")) all.pop_back();
    creds.password = all;
  } else if (tty) {
    auto p = prompt_no_echo("Password: ");
    if (!p) {
      print_error("login: no password given");
      return kExitFailure;
    }
    creds.password = *p;
  } else {
    print_error(
        "login: cannot prompt for a password: stdin is not a terminal (use --password-stdin)");
    return kExitFailure;
  }
  if (creds.password.empty()) {
    print_error("login: the password is empty");
    return kExitFailure;
  }
  std::string host = key == image::kDockerHubRegistry ? std::string(image::kDockerHubApiHost) : key;
  if (Status s = verify_login(host, scheme, !f.tls_verify, creds); !s.ok()) {
    print_error(s.error().code() == ErrorCode::kPermissionDenied
                    ? s.error().to_string()
                    : "login to '" + host + "' failed: " + s.error().to_string());
    return kExitFailure;
  }
  std::string root = runtime::resolve_root(g.root);
  if (Status s = sys::make_dirs(root); !s.ok()) {
    print_error("login: " + s.error().to_string());
    return kExitFailure;
  }
  if (Status s = registry::store_credentials(root, key, creds); !s.ok()) {
    print_error("login: storing credentials: " + s.error().to_string());
    return kExitFailure;
  }
  std::cout << "Login Succeeded\n";
  return kExitOk;
}

int logout(const std::string& server, const GlobalOptions& g) {
  std::string key = registry::canonical_registry(server);
  Status s = registry::remove_credentials(runtime::resolve_root(g.root), key);
  if (!s.ok()) {
    if (s.error().code() == ErrorCode::kNotFound)
      print_error("logout: not logged in to '" + server + "'");
    else
      print_error("logout: " + s.error().to_string());
    return kExitFailure;
  }
  std::cout << "Removed login credentials for " << key << "\n";
  return kExitOk;
}

int list(const std::string& format, const GlobalOptions& g) {
  std::string path = runtime::resolve_root(g.root) + "/config.json";
  std::vector<std::pair<std::string, std::string>> rows;  // server, username
  auto text = sys::read_file(path, 4 << 20);
  if (text.ok()) {
    auto doc = nlohmann::json::parse(*text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      print_error("registry ls: " + path + ": not valid JSON");
      return kExitFailure;
    }
    if (doc.contains("auths") && doc["auths"].is_object()) {
      for (const auto& [server, entry] : doc["auths"].items()) {
        std::string user;
        if (entry.is_object() && entry.contains("auth") && entry["auth"].is_string()) {
          auto decoded = registry::base64_decode(entry["auth"].get<std::string>());
          if (decoded) user = decoded->substr(0, decoded->find(':'));
        }
        if (user.empty() && entry.is_object() && entry.contains("username") &&
            entry["username"].is_string())
          user = entry["username"].get<std::string>();
        rows.emplace_back(registry::canonical_registry(server), user);
      }
    }
  } else if (text.error().code() != ErrorCode::kNotFound) {
    print_error("registry ls: " + text.error().to_string());
    return kExitFailure;
  }
  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [server, user] : rows)
      out.push_back({{"server", server}, {"username", user}});
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%-40s %s\n", "SERVER", "USERNAME");
  for (const auto& [server, user] : rows)
    std::printf("%-40s %s\n", server.c_str(), user.c_str());
  return kExitOk;
}

}  // namespace

Runner add_registry(CLI::App& app, const GlobalOptions& global) {
  struct Flags {
    LoginFlags login;
    std::string logout_server;
    std::string format = "table";
  };
  auto f = std::make_shared<Flags>();
  CLI::App* reg = app.add_subcommand("registry", "Manage registry credentials");
  reg->require_subcommand(1);
  CLI::App* login_cmd = reg->add_subcommand("login", "Log in to a registry");
  login_cmd->add_option("-u,--username", f->login.username, "User name");
  login_cmd->add_flag("--password-stdin", f->login.password_stdin, "Read the password from stdin");
  login_cmd
      ->add_option("--scheme", f->login.scheme,
                   "Registry scheme: https, http or auto (http for loopback)")
      ->check(CLI::IsMember({"http", "https", "auto"}));
  login_cmd
      ->add_option("--tls-verify", f->login.tls_verify, "Verify the registry's TLS certificate")
      ->default_str("true");
  login_cmd->add_option("server", f->login.server, "Registry, e.g. 127.0.0.1:5000")->required();
  CLI::App* logout_cmd = reg->add_subcommand("logout", "Remove a registry's credentials");
  logout_cmd->add_option("server", f->logout_server, "Registry")->required();
  CLI::App* ls_cmd = reg->add_subcommand("ls", "List the registries logged in to");
  ls_cmd->add_option("--format", f->format, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}));
  return [=, &global] {
    if (login_cmd->parsed()) return login(f->login, global);
    if (logout_cmd->parsed()) return logout(f->logout_server, global);
    if (ls_cmd->parsed()) return list(f->format, global);
    return kExitUsage;
  };
}

}  // namespace vessel::cli
