import { JsonTransformer, RecordDuplicateError, RecordNotFoundError } from '@credo-ts/core';
import type { AgentContext, BaseRecord, BaseRecordConstructor, Query, QueryOptions, StorageService } from '@credo-ts/core';

interface StoredRecord {
  type: string;
  value: Record<string, unknown>;
  tags: Record<string, unknown>;
}

/**
 * A Credo 0.6 StorageService kept in memory, one map per agent context: no storage service ships in the
 * 0.6 packages that install here (Askar's native library cannot be downloaded). Records are stored as
 * JSON and rebuilt on read, as a real storage would, so no two readers share an instance.
 */
// Credo's own StorageService is declared over BaseRecord<any, any, any>; a narrower bound does not implement it.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class CredoInMemoryStorage<T extends BaseRecord<any, any, any>> implements StorageService<T> {
  private readonly contexts = new Map<string, Map<string, StoredRecord>>();

  async save(agentContext: AgentContext, record: T): Promise<void> {
    record.updatedAt = record.updatedAt ?? new Date();
    const records = this.records(agentContext);
    if (records.has(this.key(record.type, record.id)))
      throw new RecordDuplicateError(`record ${record.id} already exists`, { recordType: record.type });
    records.set(this.key(record.type, record.id), this.toStored(record));
  }

  async update(agentContext: AgentContext, record: T): Promise<void> {
    record.updatedAt = new Date();
    const records = this.records(agentContext);
    if (!records.has(this.key(record.type, record.id)))
      throw new RecordNotFoundError(`record ${record.id} not found`, { recordType: record.type });
    records.set(this.key(record.type, record.id), this.toStored(record));
  }

  async delete(agentContext: AgentContext, record: T): Promise<void> {
    await this.deleteById(agentContext, record.constructor as BaseRecordConstructor<T>, record.id);
  }

  async deleteById(agentContext: AgentContext, recordClass: BaseRecordConstructor<T>, id: string): Promise<void> {
    if (!this.records(agentContext).delete(this.key(recordClass.type, id)))
      throw new RecordNotFoundError(`record ${id} not found`, { recordType: recordClass.type });
  }

  async getById(agentContext: AgentContext, recordClass: BaseRecordConstructor<T>, id: string): Promise<T> {
    const stored = this.records(agentContext).get(this.key(recordClass.type, id));
    if (!stored) throw new RecordNotFoundError(`record ${id} not found`, { recordType: recordClass.type });
    return this.fromStored(stored, recordClass);
  }

  async getAll(agentContext: AgentContext, recordClass: BaseRecordConstructor<T>): Promise<T[]> {
    return [...this.records(agentContext).values()]
      .filter((stored) => stored.type === recordClass.type)
      .map((stored) => this.fromStored(stored, recordClass));
  }

  async findByQuery(
    agentContext: AgentContext,
    recordClass: BaseRecordConstructor<T>,
    query: Query<T>,
    options?: QueryOptions,
  ): Promise<T[]> {
    const found = [...this.records(agentContext).values()].filter(
      (stored) => stored.type === recordClass.type && matches(stored.tags, query as QueryShape),
    );
    const offset = options?.offset ?? 0;
    return found
      .slice(offset, options?.limit === undefined ? undefined : offset + options.limit)
      .map((stored) => this.fromStored(stored, recordClass));
  }

  private records(agentContext: AgentContext): Map<string, StoredRecord> {
    let records = this.contexts.get(agentContext.contextCorrelationId);
    if (!records) this.contexts.set(agentContext.contextCorrelationId, (records = new Map()));
    return records;
  }

  private key(type: string, id: string): string {
    return `${type}\u0000${id}`;
  }

  private toStored(record: T): StoredRecord {
    return { type: record.type, value: JsonTransformer.toJSON(record), tags: { ...record.getTags() } };
  }

  private fromStored(stored: StoredRecord, recordClass: BaseRecordConstructor<T>): T {
    const record = JsonTransformer.fromJSON(stored.value, recordClass);
    record.replaceTags(stored.tags as never);
    return record;
  }
}

interface QueryShape {
  $and?: QueryShape[];
  $or?: QueryShape[];
  $not?: QueryShape;
  [tag: string]: unknown;
}

/** Credo's tag query semantics: every simple tag equal (arrays: every value contained), with $and/$or/$not. */
function matches(tags: Record<string, unknown>, query: QueryShape): boolean {
  for (const [name, expected] of Object.entries(query)) {
    if (name === '$and') {
      if (!(expected as QueryShape[]).every((sub) => matches(tags, sub))) return false;
    } else if (name === '$or') {
      if ((expected as QueryShape[]).length > 0 && !(expected as QueryShape[]).some((sub) => matches(tags, sub))) return false;
    } else if (name === '$not') {
      if (matches(tags, expected as QueryShape)) return false;
    } else if (expected === undefined) {
      continue;
    } else if (Array.isArray(expected)) {
      const actual = tags[name];
      if (!Array.isArray(actual) || !expected.every((value) => actual.includes(value))) return false;
    } else if (tags[name] !== expected) {
      return false;
    }
  }
  return true;
}
