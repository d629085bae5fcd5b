/* libFuzzer harness for the policy snapshot's reader (policy/snapshot.h):
 * any bytes are a snapshot file, read as they are and again sealed with a
 * matching "end" line (so that the fuzzer gets past the checksum to the
 * lines).  Reading must never crash or leak; a snapshot that reads must
 * write back to one that reads to the same model. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/snapshot.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pc_config *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        char err[1024];

        (void)argc;
        (void)argv;
        if (pc_config_load(PC_SOURCE_ROOT "/etc/portcullis.yaml", &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "fuzz_snapshot: %s\n", err);
                abort();
        }
        return 0;
}

/* Reads <text>; if it reads, writes it back and reads that again. */
static void one(const char *text, size_t len)
{
        struct pc_model *m = NULL, *again = NULL;
        struct pc_snapshot_head h;
        struct pc_snapshot_stats st;
        struct strbuf b = { 0 };
        size_t n = 0;
        char err[256];

        if (pc_model_new(cfg, &m) < 0)
                return;
        if (pc_snapshot_parse(text, len, m, 1764590000, &h, &st, err, sizeof(err)) == 0) {
                if (st.loaded != pc_model_count(m) || st.loaded > st.vpses)
                        abort();
                if (pc_snapshot_format(m, &h, &b, &n) == 0) {
                        pc_snapshot_seal(&b, n);
                        if (pc_model_new(cfg, &again) < 0 ||
                            pc_snapshot_parse(b.s, b.len, again, 1764590000, &h, NULL, err, sizeof(err)) != 0 ||
                            pc_model_count(again) != pc_model_count(m))
                                abort();
                }
        } else if (pc_model_count(m) != 0) {
                abort(); /* refused, yet half applied */
        }
        strbuf_free(&b);
        pc_model_free(again);
        pc_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct strbuf b = { 0 };
        size_t vpses = 0;

        one((const char *)data, size);
        /* Sealed: the count of lines that begin "vps ". */
        strbuf_append(&b, (const char *)data, size);
        if (b.oom || memchr(data, '\0', size) != NULL) {
                strbuf_free(&b);
                return 0;
        }
        for (size_t i = 0; i + 4 <= size; i++)
                if ((i == 0 || data[i - 1] == '\n') && memcmp(data + i, "vps ", 4) == 0)
                        vpses++;
        pc_snapshot_seal(&b, vpses);
        one(b.s, b.len);
        strbuf_free(&b);
        return 0;
}
