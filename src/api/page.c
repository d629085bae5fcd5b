/* Pages of a list (api.h): ?limit= and ?before=, the items of one page and
 * where the next one starts, the same for every list the API answers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int api_page_start(struct api_request *req, struct api_reply *rep, const char *before_is, struct api_page *p)
{
        const char *before = before_is != NULL ? api_query(req, "before") : NULL;

        memset(p, 0, sizeof(*p));
        if (api_query_limit(req, rep, &p->limit) < 0)
                return -EINVAL;
        if (before != NULL) {
                char *end;

                p->before = strtoll(before, &end, 10);
                if (*before == '\0' || *end != '\0' || p->before <= 0) {
                        api_reply_fail(rep, PC_OPS_EINVAL, "before", "before must be %s", before_is);
                        return -EINVAL;
                }
        }
        p->list = json_array();
        return 0;
}

int api_page_take(struct api_page *p, int64_t id, json_t *item)
{
        size_t at;

        /* A read not narrowed by the store: the items the client has seen. */
        if (p->before != 0 && id >= p->before) {
                json_decref(item);
                return 0;
        }
        if (id == 0) { /* keyed otherwise: in the order read */
                if (p->n == p->limit) {
                        json_decref(item);
                        return -ENOBUFS;
                }
                json_array_append_new(p->list, item);
                p->n++;
                return 0;
        }
        if (p->n == 0 || id > p->prev)
                p->run = 0; /* another run, newest first again */
        p->prev = id;
        /* This run's next items are older than the <limit> it gave. */
        if (p->run == p->limit) {
                json_decref(item);
                p->more = true;
                return -ENOBUFS;
        }
        p->run++;
        for (at = p->n; at > 0 && p->ids[at - 1] < id; at--)
                ;
        if (at == p->limit) { /* older than a full page */
                json_decref(item);
                p->more = true;
                return 0;
        }
        if (p->n == p->limit) { /* the oldest goes */
                json_array_remove(p->list, p->n - 1);
                p->n--;
                p->more = true;
        }
        memmove(&p->ids[at + 1], &p->ids[at], (p->n - at) * sizeof(p->ids[0]));
        p->ids[at] = id;
        json_array_insert_new(p->list, at, item);
        p->n++;
        p->last = p->ids[p->n - 1];
        return 0;
}

void api_page_fail(struct api_reply *rep, struct api_page *p, const struct pc_ops_error *err)
{
        json_decref(p->list);
        p->list = NULL;
        api_reply_error(rep, err);
}

void api_page_reply(struct api_reply *rep, struct api_page *p, const char *name, json_t *next)
{
        api_reply_json(rep, 200, json_pack("{s:o, s:o}", name, p->list, "next", next));
        p->list = NULL;
}

void api_page_end(struct api_reply *rep, struct api_page *p, const char *name, int r, const struct pc_ops_error *err)
{
        if (r < 0 && r != -ENOBUFS) {
                api_page_fail(rep, p, err);
                return;
        }
        /* Newest first: the next page is before the last item of this one. */
        api_page_reply(rep, p, name, p->more && p->n > 0 ? json_integer(p->last) : json_null());
}
