#include "ssh/shell_quote.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace rcp {
namespace {

// Runs `shell -c "printf %s <quoted>"` and returns what it printed, so the
// quoting is checked by a real shell rather than by re-implementing one.
std::string through_shell(const char* shell, const std::string& word) {
  const std::string command = "printf %s " + shell_quote(word);
  int out[2];
  if (pipe(out) != 0) return "<pipe failed>";
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    execl(shell, shell, "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string got;
  std::array<char, 4096> buf{};
  ssize_t n;
  while ((n = read(out[0], buf.data(), buf.size())) > 0) got.append(buf.data(), static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "<shell failed: " + command + ">";
  return got;
}

const std::vector<std::string>& hostile_words() {
  static const std::vector<std::string> words = {
      "a;b",       "$(id)",       "`id`",
      "a|b",       "a&b",         "a<b",
      "a>b",       "*",           "?",
      "~",         "~root",       "!",
      "a\nb",      "two words",   " lead",
      "tab\there", "it's",        "'",
      "''",        "\\",          "\\'",
      "\"q\"",     "$HOME",       "${HOME}",
      "a#b",       "#",           "{a,b}",
      "[ab]",      "=ls",         "%1",
      "-rf",       "héllo wörld", "日本語/ファイル",
      "\xff\xfe",  "a'\\''b",     "x$(touch /tmp/rcp-quote-test)",
  };
  return words;
}

TEST(ShellQuote, EmptyStringIsTwoQuotes) { EXPECT_EQ(shell_quote(""), "''"); }

TEST(ShellQuote, SafeWordsStayReadable) {
  EXPECT_EQ(shell_quote("rcpd"), "rcpd");
  EXPECT_EQ(shell_quote("--role"), "--role");
  EXPECT_EQ(shell_quote("/usr/local/bin/rcpd"), "/usr/local/bin/rcpd");
  EXPECT_EQ(shell_quote("127.0.0.1:9000,[::1]"), "'127.0.0.1:9000,[::1]'");  // brackets glob
  EXPECT_EQ(shell_quote("user@host"), "user@host");
}

TEST(ShellQuote, SingleQuoteUsesCloseEscapeReopen) {
  EXPECT_EQ(shell_quote("a'b"), "'a'\\''b'");
  EXPECT_EQ(shell_quote("'"), "''\\'''");
}

TEST(ShellQuote, MetacharactersAreQuoted) {
  for (const char* s : {";", "$()", "`", "|", "&", "<", ">", "*", "?", "~", "!", "\n", " ", "=", "%", "#"}) {
    const std::string q = shell_quote(s);
    EXPECT_EQ(q.front(), '\'') << s;
    EXPECT_EQ(q.back(), '\'') << s;
  }
}

TEST(ShellQuote, RoundTripsThroughPosixShell) {
  ::unlink("/tmp/rcp-quote-test");
  for (const auto& w : hostile_words()) EXPECT_EQ(through_shell("/bin/sh", w), w) << "word: " << w;
  EXPECT_NE(::access("/tmp/rcp-quote-test", F_OK), 0) << "a quoted $(...) was executed";
}

TEST(ShellQuote, RoundTripsThroughBash) {
  if (::access("/bin/bash", X_OK) != 0) GTEST_SKIP() << "no bash";
  for (const auto& w : hostile_words()) EXPECT_EQ(through_shell("/bin/bash", w), w) << "word: " << w;
}

TEST(ShellQuote, QuotedWordsConcatenateIntoOneArgument) {
  // Two quoted words joined without a space must still be one argument.
  EXPECT_EQ(through_shell("/bin/sh", "a b' c"), "a b' c");
}

TEST(CheckHostOperand, AcceptsNamesAddressesAndAliases) {
  for (const char* h : {"example.com", "127.0.0.1", "::1", "[::1]", "user@host", "rcptest", "fe80::1%eth0"})
    EXPECT_TRUE(check_host_operand(h).ok()) << h;
}

TEST(CheckHostOperand, RefusesEmptyOptionsAndControlCharacters) {
  for (const std::string& h :
       {std::string(""), std::string("-oProxyCommand=touch /tmp/x"), std::string("-p"), std::string("host name"),
        std::string("host\nname"), std::string("host\tx"), std::string("a\x7f"), std::string("a\0b", 3)}) {
    auto r = check_host_operand(h);
    ASSERT_FALSE(r.ok()) << h;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
  }
  EXPECT_NE(check_host_operand("-x").error().message.find("'-'"), std::string::npos);
}

}  // namespace
}  // namespace rcp
