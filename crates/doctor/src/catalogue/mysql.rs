use super::Check;

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "mysql.skip_name_resolve",
        title: "skip_name_resolve off: a reverse DNS lookup on every connect",
        why: "With skip_name_resolve OFF the server resolves each client address back to a name (and forward again) before authenticating: a slow or broken resolver adds seconds to every connect, and the host cache fills with errors.",
        fix: "skip_name_resolve = ON in my.cnf ([mysqld]) and restart; grant by IP or network (user@'10.0.%') instead of host names.",
        verify: "SELECT @@skip_name_resolve;",
    },
    Check {
        id: "mysql.tls",
        title: "TLS: require_secure_transport and the negotiated version",
        why: "Without require_secure_transport clients may connect in clear text; TLS 1.0/1.1 are broken and refused by modern clients.",
        fix: "require_secure_transport = ON; tls_version = TLSv1.2,TLSv1.3 in my.cnf; clients use ssl-mode=VERIFY_IDENTITY.",
        verify: "SELECT @@require_secure_transport, @@tls_version; SHOW SESSION STATUS LIKE 'Ssl_version';",
    },
    Check {
        id: "mysql.wait_timeout",
        title: "wait_timeout / interactive_timeout vs the client pool's connection lifetime",
        why: "The server closes connections idle longer than wait_timeout. A pool that keeps idle connections longer hands out dead ones: the next query fails with 'invalid connection' / 'server has gone away'.",
        fix: "Set the client pool's max lifetime and idle timeout below wait_timeout (Go: db.SetConnMaxLifetime, HikariCP maxLifetime), or raise wait_timeout above them.",
        verify: "SELECT @@global.wait_timeout, @@global.interactive_timeout, @@session.wait_timeout;",
    },
    Check {
        id: "mysql.connections",
        title: "Connections vs max_connections and Max_used_connections",
        why: "When max_connections is reached new clients get 'Too many connections' (1040); a high Max_used_connections shows how close the peak came.",
        fix: "Size client pools so their sum stays below max_connections; fix leaks; raise max_connections only with memory to back it.",
        verify: "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Max_used_connections'); SELECT @@max_connections;",
    },
    Check {
        id: "mysql.aborted",
        title: "Aborted_connects and Aborted_clients ratios",
        why: "Aborted connects are failed logins, handshake timeouts or port scans; aborted clients are connections dropped without COM_QUIT, usually killed by wait_timeout or a network device: the mark of pools holding connections too long.",
        fix: "Check credentials and connect_timeout for aborted connects; align pool lifetimes with wait_timeout and close connections properly for aborted clients.",
        verify: "SHOW GLOBAL STATUS WHERE Variable_name IN ('Connections', 'Aborted_connects', 'Aborted_clients');",
    },
    Check {
        id: "mysql.time_zone",
        title: "time_zone SYSTEM vs explicit",
        why: "time_zone = SYSTEM makes TIMESTAMP conversions follow the host's zone (and DST), and every conversion takes a global lock on some platforms; replicas in another zone return different values.",
        fix: "default_time_zone = '+00:00' in my.cnf (load the zone tables with mysql_tzinfo_to_sql to use names), or have clients SET time_zone = '+00:00' on connect.",
        verify: "SELECT @@global.time_zone, @@system_time_zone, @@session.time_zone;",
    },
    Check {
        id: "mysql.isolation",
        title: "Transaction isolation level",
        why: "InnoDB defaults to REPEATABLE READ, which holds gap locks and a consistent snapshot: applications written for READ COMMITTED (the PostgreSQL default) see stale reads inside a transaction and more deadlocks.",
        fix: "Choose explicitly: transaction_isolation = READ-COMMITTED in my.cnf, or SET SESSION TRANSACTION ISOLATION LEVEL in the client.",
        verify: "SELECT @@global.transaction_isolation, @@session.transaction_isolation;  -- MariaDB < 11.1: @@tx_isolation",
    },
];
