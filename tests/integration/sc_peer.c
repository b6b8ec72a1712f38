/* SPDX-License-Identifier: Apache-2.0 */
/* A listening agent in its own process, for the two-process side-channel
 * test: sc_peer NAME [EXPECT]. Creates agent NAME (LOCAL backend, one
 * registered region) listening on 127.0.0.1, port chosen by the system,
 * prints "port N" on stdout, then waits for a line on stdin. Exits 0 when
 * it then knows agent EXPECT (if given), 3 when not, 2 on setup errors. */
#include <stdio.h>

#include "sc_util.h"

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    sc_agent self;
    if (sc_open(&self, argv[1], true, 0, 5000) != FERRY_OK) {
        fprintf(stderr, "sc_peer: cannot create agent %s\n", argv[1]);
        return 2;
    }
    printf("port %u\n", (unsigned)sc_port(&self));
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof(line), stdin))
        line[0] = '\0';
    int rc = 0;
    if (argc > 2 && ferry_md_check(self.agent, argv[2], NULL) != FERRY_OK) {
        fprintf(stderr, "sc_peer: %s's metadata was not loaded\n", argv[2]);
        rc = 3;
    }
    sc_close(&self);
    return rc;
}
