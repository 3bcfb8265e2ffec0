import formbody from '@fastify/formbody';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifyError, FastifyInstance, FastifySchemaValidationError } from 'fastify';
import type { SandboxContext } from './context';
import { controlRoutes } from './routes/control';
import { miscRoutes } from './routes/misc';
import { plivoRoutes } from './routes/plivo';
import { sendgridRoutes } from './routes/sendgrid';
import { sesRoutes } from './routes/ses';
import { slackRoutes } from './routes/slack';
import { twilioRoutes } from './routes/twilio';

/** One sentence a test author can act on, from the validator's list of schema failures. */
function describeValidation(context: string, errors: FastifySchemaValidationError[]): string {
  const unknown = errors.find((e) => e.keyword === 'additionalProperties');
  if (unknown) {
    const names = (unknown.params as { additionalProperties?: unknown }).additionalProperties;
    return `${context} has unknown properties: ${Array.isArray(names) ? names.join(', ') : 'see schema'}`;
  }
  const first = errors[0];
  if (!first) return `${context} is invalid`;
  const allowed = errors
    .filter((e) => e.keyword === 'const' && e.instancePath === first.instancePath)
    .map((e) => String((e.params as { allowedValue?: unknown }).allowedValue));
  if (allowed.length > 0) return `${context}${first.instancePath} must be one of: ${allowed.join(', ')}`;
  return `${context}${first.instancePath} ${first.message ?? 'is invalid'}`;
}

export type SandboxAppOptions = SandboxContext;

/**
 * The provider sandbox as a Fastify plugin. It is deliberately NOT wrapped in fastify-plugin:
 * its form parser, validator and error handler must stay inside its own context so that
 * mounting it next to another app changes nothing for that app.
 */
export async function sandboxApp(app: FastifyInstance, context: SandboxAppOptions): Promise<void> {
  await app.register(formbody);
  app.setValidatorCompiler(TypeBoxValidatorCompiler);

  // Control-API errors are `{"error": code, "message": sentence}`; provider routes answer in
  // their provider's own shapes before anything can reach this handler.
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) {
      return reply.code(400).send({
        error: 'invalid_request',
        message: describeValidation(err.validationContext ?? 'request', err.validation),
      });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) request.log.error({ err: { name: err.name, message: err.message } }, 'sandbox error');
    return reply.code(status).send({
      error: status === 500 ? 'internal' : 'invalid_request',
      message: status === 500 ? 'internal error' : err.message.replace(/^FST_\w+: /, ''),
    });
  });

  // Held requests and pending callbacks must not outlive the server.
  app.addHook('preClose', async () => {
    context.state.releaseHolds();
    context.callbacks.close();
  });

  await app.register(controlRoutes, context);
  await app.register(twilioRoutes, context);
  await app.register(plivoRoutes, context);
  await app.register(sendgridRoutes, context);
  await app.register(sesRoutes, context);
  await app.register(slackRoutes, context);
  await app.register(miscRoutes, context);
}
