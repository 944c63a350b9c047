/* SPDX-License-Identifier: MIT */
/*
 * Guest-side O_DIRECT copier for the QEMU guest tests, built with gcc -static
 * into the initramfs. busybox dd silently drops O_DIRECT when the kernel
 * refuses its unaligned buffer; this tool uses page-aligned buffers and fails
 * instead of ever falling back to buffered I/O, so every block is one request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: odirect write FILE OFFSET BS   (stdin -> FILE at OFFSET)\n"
			"       odirect read FILE OFFSET LEN BS  (FILE at OFFSET -> stdout)\n");
	exit(2);
}

static unsigned long long num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "odirect: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

/* Reads up to len bytes; short only at end of input. */
static ssize_t read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int write_full(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int do_write(const char *path, unsigned long long off, size_t bs, char *buf)
{
	int fd = open(path, O_WRONLY | O_DIRECT);
	unsigned long long blocks = 0;

	if (fd < 0) {
		fprintf(stderr, "odirect: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (;;) {
		ssize_t n = read_full(0, buf, bs);
		ssize_t w;

		if (n < 0) {
			fprintf(stderr, "odirect: read stdin: %s\n", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if ((size_t)n != bs) {
			fprintf(stderr, "odirect: input is not a multiple of %zu bytes\n", bs);
			goto fail;
		}
		w = pwrite(fd, buf, bs, (off_t)off);
		if (w != (ssize_t)bs) {
			fprintf(stderr, "odirect: pwrite %zu at %llu: %s\n", bs, off,
				w < 0 ? strerror(errno) : "short write");
			goto fail;
		}
		off += bs;
		blocks++;
	}
	if (close(fd)) {
		fprintf(stderr, "odirect: close: %s\n", strerror(errno));
		return 1;
	}
	fprintf(stderr, "odirect: wrote %llu blocks of %zu\n", blocks, bs);
	return 0;
fail:
	close(fd);
	return 1;
}

static int do_read(const char *path, unsigned long long off, unsigned long long len,
		   size_t bs, char *buf)
{
	int fd = open(path, O_RDONLY | O_DIRECT);

	if (fd < 0) {
		fprintf(stderr, "odirect: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (len % bs) {
		fprintf(stderr, "odirect: length %llu is not a multiple of %zu\n", len, bs);
		goto fail;
	}
	for (; len; len -= bs, off += bs) {
		ssize_t n = pread(fd, buf, bs, (off_t)off);

		if (n != (ssize_t)bs) {
			fprintf(stderr, "odirect: pread %zu at %llu: %s\n", bs, off,
				n < 0 ? strerror(errno) : "short read");
			goto fail;
		}
		if (write_full(1, buf, bs)) {
			fprintf(stderr, "odirect: write stdout: %s\n", strerror(errno));
			goto fail;
		}
	}
	close(fd);
	return 0;
fail:
	close(fd);
	return 1;
}

int main(int argc, char **argv)
{
	unsigned long long bs;
	void *buf;
	int write_mode;

	if (argc < 2)
		usage();
	write_mode = !strcmp(argv[1], "write");
	if (!(write_mode && argc == 5) && !(!strcmp(argv[1], "read") && argc == 6))
		usage();
	bs = num(argv[argc - 1], "block size");
	if (bs == 0 || bs > (64u << 20)) {
		fprintf(stderr, "odirect: block size must be 1..64 MiB\n");
		return 2;
	}
	/* Page alignment satisfies any logical block size up to 4 KiB. */
	if (posix_memalign(&buf, 4096, bs)) {
		fprintf(stderr, "odirect: out of memory\n");
		return 1;
	}
	if (write_mode)
		return do_write(argv[2], num(argv[3], "offset"), bs, buf);
	return do_read(argv[2], num(argv[3], "offset"), num(argv[4], "length"), bs, buf);
}
