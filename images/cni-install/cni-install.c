/* cni-install SRC DESTDIR: copies the CNI plugin SRC into DESTDIR atomically
 * (DESTDIR/.NAME.tmp, fsync, chmod 0755, rename over DESTDIR/NAME), so the
 * container runtime never executes a half-written plugin; then sleeps until
 * SIGTERM (the CNI-installer DaemonSet's container). Static, no libc
 * dependencies at run time: the image has no shell. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }

static int copy(const char *src, const char *dir) {
  char base[4096], tmp[8192], dst[8192], buf[1 << 16];
  snprintf(base, sizeof base, "%s", src);
  const char *name = basename(base);
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
  snprintf(dst, sizeof dst, "%s/%s", dir, name);
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) { fprintf(stderr, "cni-install: open %s: %s\n", src, strerror(errno)); return 1; }
  int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  if (out < 0) { fprintf(stderr, "cni-install: create %s: %s\n", tmp, strerror(errno)); return 1; }
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, n - off);
      if (w < 0) { fprintf(stderr, "cni-install: write %s: %s\n", tmp, strerror(errno)); unlink(tmp); return 1; }
      off += w;
    }
  }
  if (n < 0 || fchmod(out, 0755) || fsync(out) || close(out)) {
    fprintf(stderr, "cni-install: %s: %s\n", tmp, strerror(errno)); unlink(tmp); return 1;
  }
  close(in);
  if (rename(tmp, dst)) { fprintf(stderr, "cni-install: rename %s: %s\n", dst, strerror(errno)); unlink(tmp); return 1; }
  fprintf(stderr, "cni-install: installed %s\n", dst);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: cni-install SRC... DESTDIR\n"); return 2; }
  for (int i = 1; i < argc - 1; i++)
    if (copy(argv[i], argv[argc - 1])) return 1;
  signal(SIGTERM, quit);
  signal(SIGINT, quit);
  for (;;) pause();
}
