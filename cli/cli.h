/* cli.h: commands of the `mlreg` binary (internal to cli/).
 *
 * Every command takes argv with argv[0] = the command name and returns the
 * process exit code: 0 ok; 1 refused (409/401/403/404) or verification failed;
 * 2 usage or local I/O error; 3 registry unreachable or server error (5xx).
 */
#ifndef MLREG_CLI_H
#define MLREG_CLI_H

enum { CLI_EXIT_OK = 0, CLI_EXIT_REFUSED = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_REMOTE = 3 };

int cmd_serve(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_promote(int argc, char **argv);
int cmd_approve(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_resolve(int argc, char **argv);
int cmd_image_tag(int argc, char **argv);

#endif
