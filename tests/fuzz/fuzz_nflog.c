/* libFuzzer harness for the NFLOG payload parser: the bytes are a packet a
 * VPS crafted.  Parsing must never read out of bounds, and what it reports
 * must stay inside the packet. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events/nflog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* An exactly sized copy, so that any over-read is caught. */
        uint8_t *buf = size > 0 ? malloc(size) : NULL;
        struct pc_nflog_packet p;

        if (size > 0 && buf == NULL)
                return 0;
        if (size > 0)
                memcpy(buf, data, size);
        memset(&p, 0, sizeof(p));
        pc_nflog_parse_payload(buf, size, &p);
        if (p.head_len > sizeof(p.head) || p.head_len > size)
                abort();
        free(buf);
        return 0;
}
