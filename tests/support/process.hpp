#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace kachel::test {

/// A child process (the kachel binary) with stdout and stderr captured in a file.
/// Killed (SIGTERM, then SIGKILL) when destroyed.
class child_process {
  public:
    /// \param env_changes variables to set (a value of std::nullopt removes the variable)
    child_process(std::vector<std::string> args,
                  std::map<std::string, std::optional<std::string>> const& env_changes)
        : m_log(std::filesystem::temp_directory_path() /
                ("kachel-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++) + ".log")) {
        std::map<std::string, std::string> env;
        for (char** e = environ; *e != nullptr; ++e) {
            std::string const kv{*e};
            auto const eq = kv.find('=');
            env[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
        }
        for (auto const& [k, v] : env_changes) {
            if (v) {
                env[k] = *v;
            } else {
                env.erase(k);
            }
        }
        std::vector<std::string> env_strings;
        for (auto const& [k, v] : env) {
            env_strings.push_back(k + "=" + v);
        }
        std::vector<char*> envp;
        for (auto& s : env_strings) {
            envp.push_back(s.data());
        }
        envp.push_back(nullptr);
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);

        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, m_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        int const rc = posix_spawn(&m_pid, argv[0], &actions, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) {
            throw std::runtime_error{"cannot start " + args.front()};
        }
    }
    child_process(child_process const&) = delete;
    child_process& operator=(child_process const&) = delete;

    ~child_process() {
        if (!m_exit_code) {
            ::kill(m_pid, SIGTERM);
            if (!wait_exit(std::chrono::seconds{5})) {
                ::kill(m_pid, SIGKILL);
                int status = 0;
                ::waitpid(m_pid, &status, 0);
            }
        }
        // A sanitizer report of the child (a leak found at exit, a memory error) fails the test
        // that ran it, even when the test only looked at HTTP answers.
        auto const out = output();
        for (char const* marker : {"ERROR: LeakSanitizer", "ERROR: AddressSanitizer",
                                   "runtime error:", "WARNING: ThreadSanitizer"}) {
            if (auto const at = out.find(marker); at != std::string::npos) {
                ADD_FAILURE() << "the kachel process reported: " << out.substr(at, 4000);
                break;
            }
        }
        if (std::getenv("KACHEL_KEEP_TEST_LOGS") == nullptr) {
            std::error_code ignored;
            std::filesystem::remove(m_log, ignored);
        }
    }

    /// Everything the process printed so far.
    [[nodiscard]] std::string output() const {
        std::ifstream in{m_log};
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    /// Waits until the output contains `text`; returns false on timeout or if the process exits.
    bool wait_for_output(std::string const& text, std::chrono::milliseconds timeout) {
        auto const deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (output().find(text) != std::string::npos) {
                return true;
            }
            if (poll_exit()) {
                return output().find(text) != std::string::npos;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds{20});
        }
        return false;
    }

    /// Waits for the process to end; returns its exit code (128+signal if killed), or nullopt on timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
        auto const deadline = std::chrono::steady_clock::now() + timeout;
        while (!poll_exit() && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds{20});
        }
        return m_exit_code;
    }

    void signal(int signo) const { ::kill(m_pid, signo); }

    [[nodiscard]] pid_t pid() const noexcept { return m_pid; }

    /// Resident memory of the process in KiB (VmRSS), 0 when it cannot be read.
    /// \throws std::runtime_error when /proc does not tell (a memory check must not pass blind).
    [[nodiscard]] std::size_t resident_kib() const {
        auto const path = "/proc/" + std::to_string(m_pid) + "/status";
        std::ifstream status{path};
        std::string line;
        while (std::getline(status, line)) {
            if (line.starts_with("VmRSS:")) {
                return std::stoul(line.substr(6));
            }
        }
        throw std::runtime_error{"cannot read the resident memory (VmRSS) of the process from " + path};
    }

  private:
    static int& counter() {
        static int n = 0;
        return n;
    }

    bool poll_exit() {
        if (m_exit_code) {
            return true;
        }
        int status = 0;
        if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
            m_exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return true;
        }
        return false;
    }

    std::filesystem::path m_log;
    pid_t m_pid = -1;
    std::optional<int> m_exit_code;
};

/// How many access-log lines of kachel's `output` are a GET of `path` whose cache field is `cache`
/// (hit, miss).
inline std::size_t access_logged(std::string const& output, std::string const& path,
                                 std::string const& cache) {
    auto const needle = "\"GET " + path + "\" ";
    std::size_t n = 0;
    for (auto pos = output.find(needle); pos != std::string::npos; pos = output.find(needle, pos + 1)) {
        auto const end = output.find('\n', pos);
        n += output.substr(pos, end - pos).ends_with("cache=" + cache) ? 1 : 0;
    }
    return n;
}

/// Waits for kachel's readiness line and returns the loopback port it serves (`-l 127.0.0.1:0`
/// picks a free one); 0 when it did not become ready in time.
inline unsigned short ready_port(child_process& proc,
                                 std::chrono::seconds timeout = std::chrono::seconds{60}) {
    if (!proc.wait_for_output("kachel is now active", timeout)) {
        return 0;
    }
    std::smatch m;
    auto const out = proc.output();
    if (!std::regex_search(out, m, std::regex{"See http://127\\.0\\.0\\.1:(\\d+)/"})) {
        return 0;
    }
    return static_cast<unsigned short>(std::stoi(m[1]));
}

} // namespace kachel::test
