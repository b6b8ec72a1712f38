/* SPDX-License-Identifier: Apache-2.0 */
/* no_cma PROGRAM [ARGS...]: runs PROGRAM with cross-memory attach refused
 * by the kernel (no_cma.h), e.g. ferry-check, which must then say that SHM
 * declines peers here. */
#include <stdio.h>
#include <unistd.h>

#include "no_cma.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: no_cma PROGRAM [ARGS...]\n");
        return 2;
    }
    if (deny_cma() != 0) {
        perror("no_cma: seccomp");
        return 2;
    }
    execvp(argv[1], argv + 1);
    perror("no_cma: exec");
    return 127;
}
