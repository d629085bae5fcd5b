/* The agent's link to portcullis-smtpd, through the proxy's control socket.
 *
 * Every change the agent applies is forwarded ("sync ID", "reload") so that
 * the proxy refuses a VPS as soon as a filter or suspension covers port 25;
 * and at the agent's start, after its first sync, the proxy reloads; the
 * proxy's per-VPS mail figures are read every attempts-interval
 * (the spam detector's input).  A hypervisor without the proxy simply has no
 * socket: nothing is logged for that.  The proxy answers within
 * milliseconds; SMTPD_TIMEOUT_MS bounds a stuck one. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "base/unixsock.h"

#define SMTPD_TIMEOUT_MS 500

/* Sends <request>; returns the reply or NULL (logged unless no proxy). */
static json_t *ask(struct agent *a, const char *request)
{
        json_t *reply = NULL;
        int r = pc_unix_request(a->cfg->smtpd.control_socket, request, SMTPD_TIMEOUT_MS, &reply);

        if (r == -ENOENT || r == -ECONNREFUSED)
                return NULL;
        if (r < 0) {
                agent_log("The SMTP proxy did not answer '%s': %s", request, strerror(-r));
                return NULL;
        }
        if (!json_is_true(json_object_get(reply, "ok")))
                agent_log("The SMTP proxy refused '%s': %s", request,
                          json_string_value(json_object_get(reply, "error")) ?: "no reason given");
        return reply;
}

void agent_smtpd_tell(struct agent *a, const char *verb, const char *arg)
{
        char request[160];

        snprintf(request, sizeof(request), "%s%s%s", verb, arg != NULL ? " " : "", arg != NULL ? arg : "");
        json_decref(ask(a, request));
}

void agent_smtpd_started(struct agent *a)
{
        /* Changes made while the agent was down (a VPS added by the CLI)
         * reached the store but not the proxy: it reads everything again,
         * now that the kernel redirects for them.  Silent without a proxy. */
        agent_smtpd_tell(a, "reload", NULL);
}

void agent_smtpd_poll(struct agent *a)
{
        json_t *reply = ask(a, "stats");
        json_t *vps = json_object_get(reply, "vps");

        if (json_is_array(vps)) {
                json_t *prev = a->mail_stats;

                a->mail_stats = json_incref(vps);
                a->mail_stats_at = pc_now();
                agent_spam_pass(a, prev); /* the spam detector's input */
                json_decref(prev);
        }
        json_decref(reply);
}

void agent_mail_stats(struct agent *a, const char *id, json_t *reply)
{
        json_t *out = json_array(), *v;
        size_t i;

        json_array_foreach(a->mail_stats, i, v) {
                const char *key = json_string_value(json_object_get(v, "vps"));

                if (id == NULL || (key != NULL && strcmp(key, id) == 0))
                        json_array_append(out, v);
        }
        json_object_set_new(reply, "vps", out);
        json_object_set_new(reply, "read_at", json_integer(a->mail_stats_at));
}
