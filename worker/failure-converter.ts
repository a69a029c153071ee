// Loaded by path (DataConverter.failureConverterPath) in the worker and bundled into the workflow
// sandbox, so it imports nothing but @temporalio/common. With a payload codec configured, a
// failure's message and stack trace travel as an encoded (encrypted) attribute: the server and a
// UI without the codec server see "Encoded failure"; the error's type stays readable.
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
