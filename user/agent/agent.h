/* agent.h — the running agent: wires the kernel probes, the ring buffer, the
 * connection table, the protocol parsers and the outputs into one event loop. */
#ifndef PERISCOPE_AGENT_H
#define PERISCOPE_AGENT_H

#include "agent/config.h"

struct agent;
struct logger;

/* Loads the probes and opens the outputs. Returns 0, or a negative errno
 * (already logged with the reason). */
int agent__new(const struct config *c, struct logger *lg, struct agent **out);
void agent__free(struct agent *a); /* accepts NULL */

/* Runs until SIGINT/SIGTERM, then flushes. Returns 0 or a negative errno. */
int agent_run(struct agent *a);

/* `replay` mode: pushes the event file through the pipeline as fast as it
 * goes and logs the rates. Returns 0 or a negative errno. */
int agent_replay(struct agent *a);

#endif
