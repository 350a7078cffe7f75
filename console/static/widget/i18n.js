/*
 * AskAgency widget: user-interface strings, one table per language.
 *
 * Loaded by askagency-widget.js before the widget starts. To add a language, add a table here
 * (same keys as "en") or call AskAgencyWidget.addLanguage("fr", {...}) from the page before the
 * widget opens. Missing keys fall back to English. "{name}" placeholders are filled in by the
 * widget; every string is inserted as text, never as HTML.
 */
(function (root) {
  "use strict";
  var tables = (root.AskAgencyWidgetI18n = root.AskAgencyWidgetI18n || {});

  tables.en = {
    languageName: "English",
    launcher: "Ask us",
    launcherOpen: "Open chat: {title}",
    launcherClose: "Close chat: {title}",
    unreadOne: "1 new message",
    unread: "{count} new messages",
    close: "Close chat",
    languageLabel: "Language",
    disclaimer:
      "Automated assistant. Please do not share personal details such as ID, passport or card numbers.",
    logLabel: "Conversation",
    inputLabel: "Your question",
    inputPlaceholder: "Type your question…",
    send: "Send",
    talkToPerson: "Talk to a person",
    newConversation: "New conversation",
    backToAssistant: "Back to the assistant",
    you: "You",
    assistant: "Assistant",
    agent: "Agent",
    agentNamed: "{name} (agent)",
    saidPrefix: "{sender}:",
    typing: "The assistant is typing…",
    source: "Source:",
    newTab: "(opens in a new tab)",
    suggestions: "Suggested replies",
    helpfulQuestion: "Was this answer helpful?",
    yes: "Yes",
    no: "No",
    helpfulYes: "Yes, this answer was helpful",
    helpfulNo: "No, this answer was not helpful",
    feedbackThanks: "Thank you for your feedback.",
    afterHours: "Our team is offline right now.",
    expectedReply: "A person will reply by {time}.",
    connecting: "Connecting…",
    offline: "Connection lost. Reconnecting… Your messages will be sent when the connection is back.",
    unavailable: "The chat is not available right now. Please try again later.",
    historyError: "Earlier messages could not be loaded.",
    tooLong: "Please shorten your message to {max} characters or fewer.",
    greeting:
      "Hi! I'm the automated assistant. Ask me a question, for example: \u201cCan I bring my laptop in my carry-on?\u201d",
  };

  tables.es = {
    languageName: "Español",
    launcher: "Pregúntenos",
    launcherOpen: "Abrir chat: {title}",
    launcherClose: "Cerrar chat: {title}",
    unreadOne: "1 mensaje nuevo",
    unread: "{count} mensajes nuevos",
    close: "Cerrar chat",
    languageLabel: "Idioma",
    disclaimer:
      "Asistente automático. No comparta datos personales como números de identificación, pasaporte o tarjeta.",
    logLabel: "Conversación",
    inputLabel: "Su pregunta",
    inputPlaceholder: "Escriba su pregunta…",
    send: "Enviar",
    talkToPerson: "Hablar con una persona",
    newConversation: "Nueva conversación",
    backToAssistant: "Volver al asistente",
    you: "Usted",
    assistant: "Asistente",
    agent: "Agente",
    agentNamed: "{name} (agente)",
    saidPrefix: "{sender}:",
    typing: "El asistente está escribiendo…",
    source: "Fuente:",
    newTab: "(se abre en una pestaña nueva)",
    suggestions: "Respuestas sugeridas",
    helpfulQuestion: "¿Le resultó útil esta respuesta?",
    yes: "Sí",
    no: "No",
    helpfulYes: "Sí, esta respuesta fue útil",
    helpfulNo: "No, esta respuesta no fue útil",
    feedbackThanks: "Gracias por sus comentarios.",
    afterHours: "Nuestro equipo no está disponible en este momento.",
    expectedReply: "Una persona le responderá antes de: {time}.",
    connecting: "Conectando…",
    offline:
      "Se perdió la conexión. Reconectando… Sus mensajes se enviarán cuando vuelva la conexión.",
    unavailable: "El chat no está disponible en este momento. Inténtelo más tarde.",
    historyError: "No se pudieron cargar los mensajes anteriores.",
    tooLong: "Acorte su mensaje a {max} caracteres como máximo.",
    greeting:
      "¡Hola! Soy el asistente automático. Hágame una pregunta, por ejemplo: \u201c¿Puedo llevar mi portátil en el equipaje de mano?\u201d",
  };
})(window);
