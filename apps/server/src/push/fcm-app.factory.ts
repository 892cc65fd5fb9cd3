import * as fs from 'node:fs';
import { Injectable } from '@nestjs/common';
import { AppOptions, cert } from 'firebase-admin/app';

/**
 * Builds the `firebase-admin` app options of one Firebase project from its service-account file. A provider of
 * its own so that the transport's wiring (credential, HTTP agent) is one seam: the end-to-end tests replace
 * exactly this to reach a local fake FCM service over TLS, and nothing else of the FCM path.
 */
@Injectable()
export class FcmAppFactory {
  appOptions(_appId: string, credentialFile: string): AppOptions {
    const account = JSON.parse(fs.readFileSync(credentialFile, 'utf8')) as {
      project_id: string;
      client_email: string;
      private_key: string;
    };
    return {
      credential: cert({ projectId: account.project_id, clientEmail: account.client_email, privateKey: account.private_key }),
      projectId: account.project_id,
    };
  }
}
