#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace sluice::testing {

// Starts `binary` with `args` in a child process; its stdout and stderr go to `log` when
// given (else they are inherited). Returns the child's pid (-1 if fork failed); the
// caller signals and reaps it (kill, waitpid).
inline pid_t Spawn(const char* binary, const std::vector<std::string>& args, const std::string& log = "") {
  pid_t pid = fork();
  if (pid == 0) {
    if (!log.empty()) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
    }
    std::vector<char*> argv{const_cast<char*>(binary)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary, argv.data());
    _exit(127);
  }
  return pid;
}

// Runs `binary` with `args` to the end, its stdout and stderr going to the file `log`;
// returns its exit code (-1 when it did not exit normally) and what it wrote.
inline std::pair<int, std::string> RunCaptured(const char* binary, const std::vector<std::string>& args,
                                               const std::string& log) {
  pid_t pid = Spawn(binary, args, log);
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(log);
  std::stringstream out;
  out << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out.str()};
}

}  // namespace sluice::testing
