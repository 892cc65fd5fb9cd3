import { DynamicModule, Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { DatabaseConnection } from './database.connection';

/** Provides the open `DataSource`; closes it when the application shuts down. */
@Global()
@Module({})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(DatabaseConnection) private readonly connection: DatabaseConnection) {}

  static forRoot(): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [
        { provide: DatabaseConnection, inject: [APP_CONFIG], useFactory: (config: AppConfig) => DatabaseConnection.open(config) },
        { provide: DataSource, inject: [DatabaseConnection], useFactory: (connection: DatabaseConnection) => connection.dataSource },
      ],
      exports: [DataSource],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.connection.close();
  }
}
