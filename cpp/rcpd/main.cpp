// rcpd: the daemon the master starts on each host. This build knows its
// version; the source/destination roles arrive with the copy engine.
#include <cstdio>
#include <cstring>

#include "message.h"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("rcpd %s protocol %u\n", RCP_VERSION, rcp::kProtocolVersion);
      return 0;
    }
  }
  std::fprintf(stderr, "usage: rcpd --version\n");
  return 2;
}
