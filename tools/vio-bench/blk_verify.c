/* SPDX-License-Identifier: MIT */
/*
 * vio-bench blk --verify: the verify table and the data patterns. Every 8
 * bytes of a written block depend on (run seed, sector, generation, offset);
 * a read of a block written in this run must find the last generation. It
 * only fills and checks buffers; it never submits or waits for a request.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk_bench.h"

#define BLK_VERIFY_MAX_BLOCKS (64u << 20)
#define WORDS_PER_SECTOR (SECTOR / 8)
#define POISON 0xa5                   /* a verified read's buffer before the device fills it */

static uint64_t pattern_word(uint64_t seed, uint64_t sector, uint32_t gen, unsigned i)
{
	uint64_t x = seed ^ (sector * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)gen << 32 | i);

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void pattern_fill(const struct blk_run *run, void *buf, uint64_t sector, uint32_t gen)
{
	uint64_t *w = buf;

	for (uint32_t s = 0; s < run->o.bs / SECTOR; s++)
		for (unsigned i = 0; i < WORDS_PER_SECTOR; i++)
			*w++ = pattern_word(run->seed, sector + s, gen, i);
}

static bool sector_ok(const struct blk_run *run, const uint64_t *w, uint64_t sector, uint32_t gen)
{
	for (unsigned i = 0; i < WORDS_PER_SECTOR; i++)
		if (w[i] != pattern_word(run->seed, sector, gen, i))
			return false;
	return true;
}

static bool sector_all(const uint8_t *p, uint8_t v)
{
	for (unsigned i = 0; i < SECTOR; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* What a mismatching sector holds instead, for the report. */
static const char *classify(const struct blk_run *run, const uint64_t *w, uint64_t sector,
			    uint32_t gen)
{
	if (sector_all((const uint8_t *)w, 0))
		return "zeroes";
	if (sector_all((const uint8_t *)w, POISON))
		return "nothing: the device did not write the read buffer";
	if (gen > 1 && sector_ok(run, w, sector, gen - 1))
		return "the previous write's data: the last write was lost";
	return "other data";
}

void blk_check_read(struct blk_job *j, const struct io_slot *s)
{
	const struct blk_run *run = j->run;
	uint64_t sector = blk_block_sector(run, s->block);
	const uint64_t *w = s->buf;

	j->checked++;
	for (uint32_t i = 0; i < run->o.bs / SECTOR; i++, w += WORDS_PER_SECTOR)
		if (!sector_ok(run, w, sector + i, s->gen)) {
			j->mismatches++;
			blk_note_event(&j->first_bad, sector + i, (int)s->gen, false,
				   classify(run, w, sector + i, s->gen));
			return;
		}
}

/* Set the verify table and the buffer for s; kept in s->gen_before to undo. */
void blk_verify_prepare(struct blk_run *run, struct io_slot *s)
{
	uint32_t g = run->gen[s->block];

	s->gen_before = g;
	if (s->write) {
		s->gen = (g + 1 >= GEN_UNKNOWN) ? 1 : g + 1;
		pattern_fill(run, s->buf, blk_block_sector(run, s->block), s->gen);
		blk_mark_cpu(run, s->buf, run->o.bs);
	} else {
		s->gen = g == GEN_UNKNOWN ? 0 : g;
		if (s->gen) {
			memset(s->buf, POISON, run->o.bs);
			blk_mark_cpu(run, s->buf, run->o.bs);
		}
	}
	run->gen[s->block] = (s->write ? s->gen : g) | GEN_BUSY;
}

int blk_setup_verify(struct blk_run *run, uint64_t nblocks)
{
	if (!run->o.verify)
		return 0;
	if (nblocks > BLK_VERIFY_MAX_BLOCKS) {
		fprintf(stderr, "vio-bench blk: --verify tracks at most %u blocks; give --size or "
			"a larger --bs\n", BLK_VERIFY_MAX_BLOCKS);
		return -EINVAL;
	}
	if (run->o.rw == RW_READ || run->o.rw == RW_RANDREAD)
		fprintf(stderr, "vio-bench blk: note: --rw %s writes nothing, so --verify checks "
			"nothing\n", blk_rw_names[run->o.rw]);
	run->gen = calloc(nblocks, sizeof(*run->gen));
	run->seed = blk_now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	return run->gen ? 0 : -ENOMEM;
}
