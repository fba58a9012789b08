/**
 * @file oci.h
 * @brief Media types, annotation keys and limits shared by the server and the CLI.
 */
#ifndef MLREG_OCI_H
#define MLREG_OCI_H

#define MLREG_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MLREG_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MLREG_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MLREG_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MLREG_MT_OCI_EMPTY       "application/vnd.oci.empty.v1+json"
/** The empty config blob "{}" and its digest. */
#define MLREG_EMPTY_CONFIG "{}"
#define MLREG_EMPTY_CONFIG_DIGEST                                                                  \
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

#define MLREG_ARTIFACT_RELEASE "application/vnd.mlreg.release.v1+json"
/** Layer media type of a release file: "application/vnd.mlreg.<kind>.v1",
 *  except the eval report, "application/vnd.mlreg.eval-report.v1+json". */
#define MLREG_MT_LAYER_PREFIX "application/vnd.mlreg."
#define MLREG_MT_EVAL_REPORT  "application/vnd.mlreg.eval-report.v1+json"

#define MLREG_ANN_TITLE   "org.opencontainers.image.title"
#define MLREG_ANN_CREATED "org.opencontainers.image.created"
#define MLREG_ANN_KIND    "org.mlreg.kind"
#define MLREG_ANN_MODEL   "org.mlreg.model"
#define MLREG_ANN_VERSION "org.mlreg.version"
#define MLREG_ANN_GIT_SHA "org.mlreg.git-sha"
/** "true" when the release was pushed from a git tree with uncommitted
 *  changes, "false" or absent otherwise. */
#define MLREG_ANN_GIT_DIRTY "org.mlreg.git-dirty"

/** Names `mlreg pull` itself writes in the output directory: the lock file,
 *  and the prefix of its temp files. A release title may not be either, or a
 *  release would be accepted that no client can pull. */
#define MLREG_LOCK_FILE_NAME  "mlreg.lock.json"
#define MLREG_PULL_TMP_PREFIX ".mlreg-tmp-"

/** File kinds of a release, in the order the CLI lists them. */
#define MLREG_KINDS "weights", "tokenizer", "config", "seeds", "eval-report", "other"

#endif
