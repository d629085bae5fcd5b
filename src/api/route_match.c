/* Matching a request's path against a route's pattern (api.h). */
#include <string.h>

#include "api/api.h"

bool api_path_match(const char *pattern, char *path, const char **params)
{
        size_t n = 0;
        const char *p = pattern;
        char *s = path;

        while (*p != '\0') {
                if (*p == '{') {
                        const char *close = strchr(p, '}');
                        bool rest = close != NULL && close > p && close[-1] == '+';
                        char *end;

                        if (close == NULL || n == API_PARAMS_MAX)
                                return false;
                        end = rest ? s + strlen(s) : strchrnul(s, '/');
                        if (end == s) /* an empty segment is no value */
                                return false;
                        params[n++] = s;
                        p = close + 1;
                        s = end;
                        if (*s == '/' && *p == '/') {
                                *s++ = '\0';
                                p++;
                        } else if (*s != '\0' || *p != '\0')
                                return false;
                        continue;
                }
                if (*p != *s)
                        return false;
                p++;
                s++;
        }
        return *s == '\0';
}

