// One pgjdbc connection, the URL from $URL: prints "OK <current_user> <ssl>" or fails
// (tests/docker/test_clients.py; run as `java -cp /usr/share/java/postgresql.jar Probe.java`).
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;

public class Probe {
    public static void main(String[] args) {
        String url = System.getenv("URL");
        try (Connection conn = DriverManager.getConnection(url)) {
            ResultSet rs = conn.createStatement().executeQuery(
                "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
            rs.next();
            System.out.println("OK " + rs.getString(1) + " " + rs.getBoolean(2) + " pgjdbc "
                + org.postgresql.util.DriverInfo.DRIVER_VERSION);
        } catch (Exception e) {
            String msg = String.valueOf(e.getMessage()).split("\n")[0];
            System.err.println("FAILED " + e.getClass().getSimpleName() + ": " + msg);
            System.exit(1);
        }
    }
}
