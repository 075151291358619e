/* url_allow.h - the allow-list of outgoing branch URLs (BranchAllow), a
 * defence against SSRF through dtmd.
 *
 * Entries are URL prefixes ("https://svc.internal:8443/api/") or host[:port]
 * ("svc", "svc:80"). A branch URL is parsed with libcurl's URL parser, the
 * same parser that later makes the call, so "http://good@evil/" or
 * "http://good.evil/" cannot pass as "good": the host must be equal, the port
 * equal (scheme default when omitted), and the path, as sent and as a
 * decoding server would read it, start with the entry's path on a '/'
 * boundary. Free of dtmd's configuration so config_keys.c can validate entries. */
#ifndef DTMD_URL_ALLOW_H
#define DTMD_URL_ALLOW_H

#include <stddef.h>

/* Is entry a valid allow-list entry? 0 ok, -1 with a message in err. */
int url_allow_entry_check(const char *entry, char *err, size_t errlen);

/* 0 when url may be called under the nentries entries ("" needs no call and
 * always passes; no entries allow every URL); else -1 with a message naming
 * the URL in err. what names the field ("steps[0].action"). */
int url_allow_check(char *const *entries, int nentries, const char *url, const char *what,
                    char *err, size_t errlen);

#endif
