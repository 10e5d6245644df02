/*
 * token_key.c
 *		Where the key that encrypts stored tokens comes from (README: Key
 *		management): the file cloudconn.key_file names (32 raw bytes; by
 *		default cloudconn.key in the data directory, created on first use),
 *		or, when cloudconn.key_command is set, that command's standard output
 *		(64 hexadecimal digits), and then no key file is read or created.
 *
 * When each is read.  The key file at every use, so that a restored or
 * replaced file takes effect at once and the key spends no longer in memory
 * than one encryption or decryption.  The command once per process, on
 * first use: the command-line tools of secret managers take from tens of
 * milliseconds to seconds a call, and may log or rate-limit every call,
 * which a command per token operation would multiply (a rotation makes one
 * per stored token).  The price is that the key stays in the memory of a
 * process that used it, in a page of its own that is left out of core
 * dumps, zeroed in forked children and wiped at exit.  The postmaster runs
 * the command once at start (a failing command stops the start) and keeps
 * only the key's fingerprint, which every later run must match: one key for
 * the life of the server, never two processes with different keys.
 *
 * No message holds the key, the command or a path: paths go to the server
 * log only (errdetail_log), since they are superuser-only settings' values.
 */
#include "postgres.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "token_key.h"

/* How messages name the configured key file: never its path. */
#define KEY_FILE_WHAT "the token encryption key file (cloudconn.key_file)"

/* What a key command prints: 64 hexadecimal digits, then at most one newline. */
#define KEY_COMMAND_HEX_CHARS (TOKEN_KEY_BYTES * 2)
#define KEY_COMMAND_MAX_OUTPUT (KEY_COMMAND_HEX_CHARS + 1)
#define KEY_COMMAND_FORMAT_DETAIL "it must print the 32-byte key as 64 hexadecimal digits, optionally followed by a newline"

/* This process's copy of the command's key, once it has run the command. */
static TokenKey *command_key = NULL;
static bool command_key_loaded = false;

/* The fingerprint of the key the command gave the postmaster at start. */
static unsigned char start_fingerprint[TOKEN_KEY_FINGERPRINT_BYTES];
static bool have_start_fingerprint = false;

/* A key command that is running (0: none), stopped on ERROR and at exit. */
static pid_t key_command_pid = 0;

void
TokenKeyWipe(TokenKey *key)
{
	explicit_bzero(key, sizeof(TokenKey));
}

const char *
TokenKeySourceName(void)
{
	if (cloudconn_key_command != NULL && cloudconn_key_command[0] != '\0')
		return "cloudconn.key_command";
	return KEY_FILE_WHAT;
}

/*
 * The fingerprint (first 8 bytes of SHA-256("cloudconn key fingerprint" ||
 * key)) and the hex password of key->bytes.
 */
static void
TokenKeyFinish(TokenKey *key)
{
	static const char label[] = "cloudconn key fingerprint";
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool		ok;

	for (int i = 0; i < TOKEN_KEY_BYTES; i++)
	{
		key->password[2 * i] = hex[key->bytes[i] >> 4];
		key->password[2 * i + 1] = hex[key->bytes[i] & 0x0f];
	}
	key->password[TOKEN_KEY_BYTES * 2] = '\0';

	if (ctx == NULL)
	{
		TokenKeyWipe(key);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		EVP_DigestUpdate(ctx, label, sizeof(label) - 1) == 1 &&
		EVP_DigestUpdate(ctx, key->bytes, TOKEN_KEY_BYTES) == 1 &&
		EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok || digest_len < TOKEN_KEY_FINGERPRINT_BYTES)
	{
		TokenKeyWipe(key);
		elog(ERROR, "could not compute the key fingerprint");
	}
	memcpy(key->fingerprint, digest, TOKEN_KEY_FINGERPRINT_BYTES);
	explicit_bzero(digest, sizeof(digest));
}

/* ------------------------------------------------------------------------
 * Key files
 * ------------------------------------------------------------------------ */

/* Absolute path of a key file setting: empty is cloudconn.key in the data directory. */
static char *
TokenKeyFilePath(const char *setting)
{
	if (setting == NULL || setting[0] == '\0')
		return psprintf("%s/cloudconn.key", DataDir);
	if (is_absolute_path(setting))
		return pstrdup(setting);
	return psprintf("%s/%s", DataDir, setting);
}

/*
 * Create the key file atomically: write a private temporary file, then
 * link() it into place, which fails if another backend got there first (then
 * its key is used).  Returns false if the file already existed.
 */
static bool
TokenKeyCreateFile(const char *path)
{
	unsigned char bytes[TOKEN_KEY_BYTES];
	char	   *tmppath = psprintf("%s.tmp.%d", path, MyProcPid);
	int			fd;
	bool		created;

	if (!pg_strong_random(bytes, TOKEN_KEY_BYTES))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random key for cloudconn.key_file")));

	unlink(tmppath);
	fd = OpenTransientFilePerm(tmppath, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY, S_IRUSR | S_IWUSR);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create %s: %m", KEY_FILE_WHAT),
				 errdetail_log("The file is \"%s\".", tmppath)));
	if (write(fd, bytes, TOKEN_KEY_BYTES) != TOKEN_KEY_BYTES || pg_fsync(fd) != 0)
	{
		int			save_errno = errno;

		explicit_bzero(bytes, sizeof(bytes));
		CloseTransientFile(fd);
		unlink(tmppath);
		errno = save_errno ? save_errno : ENOSPC;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write %s: %m", KEY_FILE_WHAT),
				 errdetail_log("The file is \"%s\".", tmppath)));
	}
	explicit_bzero(bytes, sizeof(bytes));
	CloseTransientFile(fd);

	if (link(tmppath, path) == 0)
		created = true;
	else if (errno == EEXIST)
		created = false;
	else
	{
		int			save_errno = errno;

		unlink(tmppath);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create %s: %m", KEY_FILE_WHAT),
				 errdetail_log("The file is \"%s\".", path)));
	}
	unlink(tmppath);
	/* the key must survive a crash once a token encrypted under it commits */
	{
		char	   *dir = pstrdup(path);

		get_parent_directory(dir);
		fsync_fname_ext(dir[0] ? dir : ".", true, false, ERROR);
	}
	/* the path is a superuser-only setting's value: never to the client */
	if (created)
		ereport(LOG_SERVER_ONLY,
				(errhidestmt(true),
				 errhidecontext(true),
				 errmsg("cloudconn created a new token encryption key in \"%s\"", path),
				 errhint("Back this file up apart from database dumps and base backups: stored tokens cannot be decrypted without it (README: Key management).")));
	return created;
}

/*
 * Read a key file: a regular file of exactly 32 bytes, readable by the
 * server's OS user only.  what says how messages name it; configured says
 * it is cloudconn.key_file (its path then goes to the server log only).
 * With create_if_missing (encryption), a missing file is created.
 */
static void
TokenKeyReadFile(const char *path, const char *what, bool configured, bool create_if_missing,
				 TokenKey *key)
{
	struct stat st;
	int			fd;
	ssize_t		nread;
	unsigned char extra;

	if (stat(path, &st) != 0)
	{
		if (errno == ENOENT && create_if_missing)
		{
			TokenKeyCreateFile(path);
			if (stat(path, &st) != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not stat %s: %m", what),
						 errdetail_log("The file is \"%s\".", path)));
		}
		else if (errno == ENOENT && configured)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%s does not exist", what),
					 errdetail("Stored tokens are encrypted under the key in the file that cloudconn.key_file names (by default cloudconn.key in the data directory), not in the database; they cannot be decrypted without it."),
					 errdetail_log("The file is \"%s\".", path),
					 errhint("Restore the key file the tokens were encrypted with, or set the tokens again with connector_set_token().")));
		else if (errno == ENOENT)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FILE),
					 errmsg("%s does not exist", what)));
		else
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat %s: %m", what),
					 errdetail_log("The file is \"%s\".", path)));
	}

	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s is not a regular file", what),
				 errdetail_log("The file is \"%s\".", path)));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s has group or world access", what),
				 errdetail_log("The file is \"%s\".", path),
				 errhint("The file must be readable by the server's OS user only: chmod 0600 it.")));

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open %s: %m", what),
				 errdetail_log("The file is \"%s\".", path)));
	nread = read(fd, key->bytes, TOKEN_KEY_BYTES);
	if (nread == TOKEN_KEY_BYTES && read(fd, &extra, 1) != 0)
		nread = -2;				/* longer than a key */
	explicit_bzero(&extra, sizeof(extra));
	CloseTransientFile(fd);
	if (nread != TOKEN_KEY_BYTES)
	{
		TokenKeyWipe(key);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s is invalid", what),
				 errdetail("The file must hold exactly %d bytes.", TOKEN_KEY_BYTES),
				 errdetail_log("The file is \"%s\"; it must hold exactly %d bytes.", path, TOKEN_KEY_BYTES)));
	}
	TokenKeyFinish(key);
}

void
TokenKeyFromFile(const char *path, TokenKey *key)
{
	char	   *abspath = TokenKeyFilePath(path);

	TokenKeyReadFile(abspath, psprintf("old key file \"%s\"", abspath), false, false, key);
}

/* ------------------------------------------------------------------------
 * Key commands
 * ------------------------------------------------------------------------ */

/* Stop the running key command, if any, and reap it.  Never ERRORs. */
static void
TokenKeyStopCommand(void)
{
	pid_t		pid = key_command_pid;

	if (pid <= 0)
		return;
	/* its process group: the shell and whatever it started */
	(void) kill(-pid, SIGKILL);
	(void) kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	key_command_pid = 0;
}

/* on_proc_exit: no command outlives us, and the key goes with us. */
static void
TokenKeyAtExit(int code, Datum arg)
{
	TokenKeyStopCommand();
	if (command_key != NULL)
		TokenKeyWipe(command_key);
}

/*
 * What the child does between fork and exec: only async-signal-safe calls
 * (another thread, curl's resolver, may have held a lock at the fork).  The
 * command gets /dev/null as its standard input, the pipe as its standard
 * output and the server's standard error (the server log), and no other
 * file of ours: not the client's socket, data files or the postmaster's
 * pipes.  It is run by /bin/sh -c exactly as written, as PostgreSQL runs
 * archive_command and ssl_passphrase_command: nothing is ever substituted
 * into it, so nothing a user sends can reach the shell.
 */
static void
TokenKeyCommandChild(const char *command, int out_fd) pg_attribute_noreturn();

static void
TokenKeyCommandChild(const char *command, int out_fd)
{
	static const int reset[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGALRM, SIGPIPE,
	SIGUSR1, SIGUSR2, SIGCHLD};
	sigset_t	none;
	int			devnull;

	/* its own process group, so that stopping it stops what it started */
	(void) setpgid(0, 0);
	for (int i = 0; i < (int) lengthof(reset); i++)
		(void) signal(reset[i], SIG_DFL);
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);

	if (out_fd == STDOUT_FILENO)
	{
		if (fcntl(out_fd, F_SETFD, 0) != 0)
			_exit(126);
	}
	else if (dup2(out_fd, STDOUT_FILENO) < 0)
		_exit(126);
	devnull = open("/dev/null", O_RDONLY);
	if (devnull < 0 || (devnull != STDIN_FILENO && dup2(devnull, STDIN_FILENO) < 0))
		_exit(126);
	closefrom(STDERR_FILENO + 1);
	execl("/bin/sh", "sh", "-c", command, (char *) NULL);
	_exit(127);
}

static void
TokenKeyCommandFailed(const char *what, const char *detail) pg_attribute_noreturn();

static void
TokenKeyCommandFailed(const char *what, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("could not get the token encryption key from %s", what),
			 errdetail("%s", detail),
			 errhint("The command is run by /bin/sh -c; its standard error goes to the server log (README: Key management).")));
}

/*
 * Wait up to left_ms (at most a second) for fd to become readable, or for
 * the child to exit when fd < 0.  Interrupts are acted on (an ERROR stops
 * the command); in the postmaster, at start, there are none to act on.
 */
static void
TokenKeyWait(int fd, long left_ms)
{
	long		ms = Min(Max(left_ms, 1), fd >= 0 ? 1000 : 10);

	if (IsUnderPostmaster && MyLatch != NULL)
	{
		int			events = WL_LATCH_SET | WL_TIMEOUT | WL_POSTMASTER_DEATH;
		int			rc;

		if (fd >= 0)
			events |= WL_SOCKET_READABLE;
		rc = WaitLatchOrSocket(MyLatch, events, fd, ms, PG_WAIT_EXTENSION);
		if (rc & WL_POSTMASTER_DEATH)
		{
			TokenKeyStopCommand();
			proc_exit(1);
		}
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	else if (fd >= 0)
	{
		struct pollfd p;

		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		(void) poll(&p, 1, (int) ms);	/* EINTR: the caller looks again */
	}
	else
		pg_usleep(ms * 1000L);
}

/* Read the command's output into out (KEY_COMMAND_MAX_OUTPUT bytes at most). */
static size_t
TokenKeyReadOutput(int fd, char *out, TimestampTz deadline, const char *what, const char *timed_out)
{
	size_t		len = 0;

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		ssize_t		n;

		if (left <= 0)
			TokenKeyCommandFailed(what, timed_out);
		TokenKeyWait(fd, left);
		n = read(fd, out + len, KEY_COMMAND_MAX_OUTPUT + 1 - len);
		if (n < 0)
		{
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read the output of %s: %m", what)));
		}
		if (n == 0)
			return len;
		len += n;
		if (len > KEY_COMMAND_MAX_OUTPUT)
			TokenKeyCommandFailed(what, psprintf("The command printed more than %d bytes; " KEY_COMMAND_FORMAT_DETAIL ".",
												 KEY_COMMAND_MAX_OUTPUT));
	}
}

/* Wait for the command to exit; its wait status. */
static int
TokenKeyReap(pid_t pid, TimestampTz deadline, const char *what, const char *timed_out)
{
	for (;;)
	{
		int			status;
		pid_t		r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
		{
			key_command_pid = 0;
			return status;
		}
		if (r < 0 && errno != EINTR)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not wait for %s: %m", what)));
		if (TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline) <= 0)
			TokenKeyCommandFailed(what, timed_out);
		TokenKeyWait(-1, TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline));
	}
}

static int
TokenKeyHexValue(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The key in what the command printed: 64 hex digits, then at most "\n". */
static void
TokenKeyDecode(const char *out, size_t len, const char *what, TokenKey *key)
{
	if (len == KEY_COMMAND_HEX_CHARS + 1 && out[KEY_COMMAND_HEX_CHARS] == '\n')
		len--;
	if (len == 0)
		TokenKeyCommandFailed(what, "The command printed nothing; " KEY_COMMAND_FORMAT_DETAIL ".");
	if (len != KEY_COMMAND_HEX_CHARS)
		TokenKeyCommandFailed(what, psprintf("The command printed %zu bytes; " KEY_COMMAND_FORMAT_DETAIL ".", len));
	for (int i = 0; i < TOKEN_KEY_BYTES; i++)
	{
		int			hi = TokenKeyHexValue(out[2 * i]);
		int			lo = TokenKeyHexValue(out[2 * i + 1]);

		if (hi < 0 || lo < 0)
		{
			TokenKeyWipe(key);
			TokenKeyCommandFailed(what, "The command printed something other than hexadecimal digits; " KEY_COMMAND_FORMAT_DETAIL ".");
		}
		key->bytes[i] = (unsigned char) ((hi << 4) | lo);
	}
}

/*
 * Run a key command and read its key into key, within
 * cloudconn.key_command_timeout_ms.  A command that fails, exits non-zero,
 * prints too much or too little, or does not finish in time is an ERROR
 * saying which, never quoting the command or its output; it is stopped
 * (its whole process group) on every ERROR path, a cancel included.
 */
static void
TokenKeyRunCommand(const char *command, const char *what, TokenKey *key)
{
	char		out[KEY_COMMAND_MAX_OUTPUT + 1];
	int			pipefd[2];
	pid_t		pid;
	int			status;
	size_t		len;
	int			timeout_ms = cloudconn_key_command_timeout_ms;
	TimestampTz deadline;
	char	   *timed_out = psprintf("The command did not finish within %d ms (cloudconn.key_command_timeout_ms).",
									 timeout_ms);

	if (key_command_pid != 0)
		elog(ERROR, "a key command is already running");
	if (pipe(pipefd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create a pipe for %s: %m", what)));
	if (fcntl(pipefd[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(pipefd[1], F_SETFD, FD_CLOEXEC) != 0 ||
		fcntl(pipefd[0], F_SETFL, O_NONBLOCK) != 0)
	{
		int			save_errno = errno;

		close(pipefd[0]);
		close(pipefd[1]);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not set up a pipe for %s: %m", what)));
	}

	/* what stdio holds is not to be written twice, by the child too */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		TokenKeyCommandChild(command, pipefd[1]);
	if (pid < 0)
	{
		int			save_errno = errno;

		close(pipefd[0]);
		close(pipefd[1]);
		errno = save_errno;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start %s: %m", what)));
	}
	key_command_pid = pid;
	(void) setpgid(pid, pid);	/* as the child does: whichever comes first */
	close(pipefd[1]);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	PG_TRY();
	{
		len = TokenKeyReadOutput(pipefd[0], out, deadline, what, timed_out);
		status = TokenKeyReap(pid, deadline, what, timed_out);
		if (status != 0)
			TokenKeyCommandFailed(what, psprintf("The command failed: %s.", wait_result_to_str(status)));
		TokenKeyDecode(out, len, what, key);
	}
	PG_CATCH();
	{
		TokenKeyStopCommand();
		close(pipefd[0]);
		explicit_bzero(out, sizeof(out));
		PG_RE_THROW();
	}
	PG_END_TRY();
	close(pipefd[0]);
	explicit_bzero(out, sizeof(out));
	TokenKeyFinish(key);
}

void
TokenKeyFromCommand(const char *command, TokenKey *key)
{
	TokenKeyRunCommand(command, "old_key_command", key);
}

/*
 * This process's copy of the command's key lives in a page of its own:
 * left out of core dumps, zeroed in a forked child (the key command's
 * own), locked in memory where the limit allows, and wiped at exit.
 */
static TokenKey *
TokenKeyCommandCache(void)
{
	if (command_key == NULL)
	{
		size_t		size = (size_t) sysconf(_SC_PAGESIZE);
		void	   *p;

		size = Max(size, sizeof(TokenKey));
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
#ifdef MADV_DONTDUMP
		(void) madvise(p, size, MADV_DONTDUMP);
#endif
#ifdef MADV_WIPEONFORK
		(void) madvise(p, size, MADV_WIPEONFORK);
#endif
		(void) mlock(p, size);
		command_key = (TokenKey *) p;
		on_proc_exit(TokenKeyAtExit, (Datum) 0);
	}
	return command_key;
}

/* The server's key from cloudconn.key_command: run once, then this process's copy. */
static void
TokenKeyFromServerCommand(TokenKey *key)
{
	TokenKey   *cached = TokenKeyCommandCache();

	if (!command_key_loaded)
	{
		TokenKeyRunCommand(cloudconn_key_command, "cloudconn.key_command", cached);
		if (have_start_fingerprint &&
			memcmp(cached->fingerprint, start_fingerprint, TOKEN_KEY_FINGERPRINT_BYTES) != 0)
		{
			TokenKeyWipe(cached);
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cloudconn.key_command printed another key than it did at server start"),
					 errdetail("Every process of the server uses the key the command printed when the server started."),
					 errhint("A new key takes effect at a restart; then re-encrypt the stored tokens with cloudconn.rotate_token_key() (README: Key management).")));
		}
		command_key_loaded = true;
	}
	memcpy(key, cached, sizeof(TokenKey));
}

void
TokenKeyLoad(TokenKey *key, bool create_if_missing)
{
	if (cloudconn_key_command != NULL && cloudconn_key_command[0] != '\0')
		TokenKeyFromServerCommand(key);
	else if (cloudconn_key_command == NULL && cloudconn_key_command_without_preload)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cloudconn.key_command is set, but cloudconn is not in shared_preload_libraries"),
				 errdetail("Only a preloaded cloudconn runs the command; no key file is used instead, so that no token is encrypted under a key the command does not give."),
				 errhint("Add cloudconn to shared_preload_libraries and restart the server.")));
	else
		TokenKeyReadFile(TokenKeyFilePath(cloudconn_key_file), KEY_FILE_WHAT, true, create_if_missing, key);
}

void
TokenKeyCheckAtStart(void)
{
	TokenKey	key;

	if (cloudconn_key_command == NULL || cloudconn_key_command[0] == '\0')
		return;
	PG_TRY();
	{
		TokenKeyRunCommand(cloudconn_key_command, "cloudconn.key_command", &key);
	}
	PG_CATCH();
	{
		TokenKeyWipe(&key);
		PG_RE_THROW();
	}
	PG_END_TRY();
	memcpy(start_fingerprint, key.fingerprint, TOKEN_KEY_FINGERPRINT_BYTES);
	have_start_fingerprint = true;
	TokenKeyWipe(&key);
	ereport(LOG,
			(errmsg("cloudconn: cloudconn.key_command gave the token encryption key")));
}
