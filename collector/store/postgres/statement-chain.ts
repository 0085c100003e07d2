import type pg from 'pg';

/**
 * Statements of one transaction sent to PostgreSQL together, one round trip
 * for all of them. node-pg sends a query only after the previous one's
 * answer, and each round trip costs both processes a wake-up: a login burst
 * decided in five round trips spent as long waiting between them as
 * PostgreSQL spent working. Statements that need no answer before the next
 * (BEGIN, a lock, a write) wait in the chain and go with the next one whose
 * rows are needed, as one simple-protocol query. PostgreSQL runs them in
 * order, each with a fresh snapshot under READ COMMITTED as if sent one by
 * one; the first that fails aborts the transaction and skips the rest, and
 * the error comes back from the `query` or `send` that carried it.
 *
 * A simple query carries no parameters: values are written in as constants
 * (text-array.ts: sqlText, sqlTextArray, sqlIntArray), never by hand.
 */
export class StatementChain {
  private pending: string[] = [];

  constructor(private readonly client: pg.PoolClient) {}

  /** A statement whose answer is not needed: it goes with the next `query` or `send`. */
  add(sql: string): void {
    this.pending.push(sql);
  }

  /** Sends every waiting statement and then this one; the rows are this one's. */
  async query<R extends pg.QueryResultRow>(sql: string): Promise<pg.QueryResult<R>> {
    const statements = [...this.pending, sql];
    this.pending = [];
    const result = (await this.client.query(statements.join(';\n'))) as unknown as pg.QueryResult<R> | Array<pg.QueryResult<R>>;
    return Array.isArray(result) ? result[result.length - 1]! : result;
  }

  /** Sends every waiting statement. */
  async send(): Promise<void> {
    if (this.pending.length === 0) return;
    const statements = this.pending;
    this.pending = [];
    await this.client.query(statements.join(';\n'));
  }
}
