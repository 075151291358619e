/* branch_loop.h - libcurl's multi handle on the libevent loop: curl's
 * sockets and timer become events, and readiness goes back to curl. */
#ifndef DTMD_BRANCH_LOOP_H
#define DTMD_BRANCH_LOOP_H

#include <curl/curl.h>

struct event_base;

/* Drive multi from base. progress runs after every curl_multi_socket_action
 * (transfers may have finished: curl_multi_info_read). -1 if libevent could
 * not make the timer. */
int branch_loop_init(struct event_base *base, CURLM *multi, void (*progress)(void));
/* After curl_multi_cleanup: frees the timer and the events of any socket
 * curl did not close through branch_loop_closesocket. */
void branch_loop_shutdown(void);

/* CURLOPT_OPENSOCKETFUNCTION and CURLOPT_CLOSESOCKETFUNCTION for every
 * easy handle: a connection curl opens is known from then on, so that its
 * event may stay registered between calls (see struct sock_ctx). */
curl_socket_t branch_loop_opensocket(void *clientp, curlsocktype purpose,
                                     struct curl_sockaddr *addr);
int branch_loop_closesocket(void *clientp, curl_socket_t fd);

#endif
